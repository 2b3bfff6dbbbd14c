from django.apps import AppConfig


class ProcessesConfig(AppConfig):
    """Managed processes of every kind: runtime fields, runs, activity, tasks, watcher, control.

    A kind (gateways, web applications) registers an adapter (processes/adapters.py)
    from its own AppConfig.ready(); this app imports no kind.
    """

    name = "processes"
    label = "processes"
    verbose_name = "Managed processes"
