from django.apps import AppConfig


class ProgramsConfig(AppConfig):
    name = "programs"
    verbose_name = "Programs"

    def ready(self) -> None:
        from processes.adapters import register
        from programs import cpf
        from programs.adapter import ProgramAdapter

        # The shared process layer (processes/) starts, stops, watches and audits programs through
        # this adapter; its pages come from the shared page layer (programs/urls.py).
        register(ProgramAdapter())
        cpf.register()  # CreateProgram, ModifyProgram, DeleteProgram in merge files (portal/cpf/)
