from typing import Any

from django.apps import AppConfig


def _consumed_queues(consumer: Any) -> set[str] | None:
    """The queues the worker whose consumer is ``consumer`` serves; None when it cannot be told."""
    try:
        return set(consumer.app.amqp.queues.consume_from)
    except (AttributeError, TypeError):
        return None


def _start_watching(sender: object = None, **kwargs: Any) -> None:
    """In each worker's main process: follow this host's keepers, of every kind (see processes/watcher.py).

    Every worker follows the states (a start it ran is settled at once), but only the worker of
    the host's queue samples the processes' figures: one sampler per host, not one per worker
    (the build worker serves the build queue alone)."""
    from django.conf import settings

    from portal.queues import host_queue
    from processes.watcher import start_watcher

    queues = _consumed_queues(sender)
    host = settings.PORTAL_HOST_NAME
    start_watcher(host, metrics=queues is None or host_queue(host) in queues)


def _stop_watching(sender: object = None, **kwargs: Any) -> None:
    from processes.watcher import stop_watcher

    stop_watcher()


def _forget_deleted(sender: type, instance: Any, **kwargs: Any) -> None:
    """A definition deleted: its runs and activity stay, named only by the name they keep
    (as a foreign key with SET_NULL would leave them)."""
    from processes.adapters import adapter_of
    from processes.models import Activity, ManagedProcess, Run

    if not isinstance(instance, ManagedProcess):
        return
    try:
        kind = adapter_of(instance).kind
    except LookupError:
        return
    for model in (Run, Activity):
        model.objects.filter(kind=kind, object_id=instance.pk).update(object_id=None)


def check_hosted_users(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """``manage.py check --deploy``: hosted code that would run as the portal's own user."""
    from django.core.checks import Warning

    from processes.accounts import cannot_switch
    from processes.adapters import kinds_text

    reason = cannot_switch()
    if reason is None:
        return []
    return [Warning(
        f"{kinds_text(plural=True).capitalize()} run as the portal's own user, not as users of their own: {reason}.",
        hint="Run the portal as root (each hosted process then gets a user of its own), or accept that hosted "
             "code can reach what the portal's user can, outside the sandbox's walls (docs/security.md).",
        id="processes.W001",
    )]


class ProcessesConfig(AppConfig):
    """Managed processes of every kind: runtime fields, runs, activity, tasks, watcher, control.

    A kind (gateways, web applications) registers an adapter (processes/adapters.py)
    from its own AppConfig.ready(); this app imports no kind.
    """

    name = "processes"
    label = "processes"
    verbose_name = "Managed processes"

    def ready(self) -> None:
        from celery.signals import worker_ready, worker_shutdown
        from django.db.models.signals import post_delete

        # Celery sets Django up before the worker is ready, so these are connected in time;
        # in a web server or manage.py they never fire.
        worker_ready.connect(_start_watching, weak=False, dispatch_uid="processes.watcher.start")
        worker_shutdown.connect(_stop_watching, weak=False, dispatch_uid="processes.watcher.stop")
        post_delete.connect(_forget_deleted, weak=False, dispatch_uid="processes.forget_deleted")
        from django.core.checks import Tags, register

        register(check_hosted_users, Tags.security, deploy=True)
