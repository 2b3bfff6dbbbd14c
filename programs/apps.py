from django.apps import AppConfig


class ProgramsConfig(AppConfig):
    name = "programs"
    verbose_name = "Programs"

    def ready(self) -> None:
        from processes.adapters import register
        from processes.state import register_dashboard_tile
        from programs import cpf
        from programs.adapter import ProgramAdapter

        # The shared process layer (processes/) starts, stops, watches and audits programs and draws
        # their pages (programs/urls.py) through this adapter.
        register(ProgramAdapter())
        register_dashboard_tile("program")
        cpf.register()  # CreateProgram, ModifyProgram, DeleteProgram in merge files (portal/cpf/)
