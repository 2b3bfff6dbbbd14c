from django.apps import AppConfig


class EchoConfig(AppConfig):
    """A kind made for the tests of the shared layer (installed by portal/test_settings.py only)."""

    name = "processes.tests.echo"
    label = "echo"
    verbose_name = "Echo servers (tests)"

    def ready(self) -> None:
        from processes.adapters import register
        from processes.state import register_dashboard_tile
        from processes.tests.echo.adapter import EchoAdapter

        register(EchoAdapter())
        register_dashboard_tile("echo")
