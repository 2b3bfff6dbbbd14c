"""What every kind's merge-file adapter does the same way (portal/cpf/registry.py ``Adapter``):
find its definitions by name, say whether one is live, save and delete through processes/services.py
inside the merge's transaction, stop one before a change the running process would not follow and
start it again after. A kind's adapter (gateways/cpf.py, webapps/cpf.py, programs/cpf.py)
subclasses it with its keys, its form and what its saves keep for the rest of the merge."""

from __future__ import annotations

from typing import Any, ClassVar

from portal.cpf.registry import Adapter, ValueProblem
from portal.process.states import START, STOP


class DefinitionMergeAdapter(Adapter):
    """``model_label``: the kind's definition ("app_label.Model"), looked up when first used so that
    the kind's table of keys imports no Django (portal/tests/test_cpf_parser.py);
    ``field_keys``: the merge file's key of each form field;
    ``more_runtime_keys``: keys of no one field that change what runs (a passphrase file, a
    variable's ``Env.`` prefix)."""

    model_label: ClassVar[str]
    field_keys: ClassVar[dict[str, str]]
    more_runtime_keys: ClassVar[tuple[str, ...]] = ()

    @property
    def model(self) -> Any:
        from django.apps import apps

        return apps.get_model(self.model_label)

    def find(self, name: str) -> Any:
        return self.model.objects.filter(**self.model.lookup(name)).first()

    def all(self) -> Any:
        return self.model.objects.all()

    def name_of(self, obj: Any) -> str:
        return obj.name

    def runtime_keys(self) -> set[str]:
        """The keys that change what runs: a running definition is stopped and started again around them."""
        from processes.kinds import adapter_of

        fields = adapter_of(self.model).runtime_fields
        return {self.field_keys[f] for f in fields if f in self.field_keys} | set(self.more_runtime_keys)

    def is_active(self, obj: Any) -> bool:
        return obj.is_active or obj.intent == START

    def delete_blocker(self, obj: Any) -> str:
        from processes import services

        return services.delete_blocker(obj)

    def save_kwargs(self, form: Any, session: Any) -> dict[str, Any]:
        """How this merge's save is made: the definition as read in its transaction, under its lock."""
        return {"current": form.cpf_current} if session is not None else {}

    def saved(self, obj: Any, session: Any) -> None:
        """What the rest of the merge must know of a saved definition (its name, its port)."""

    def deleted(self, obj: Any, session: Any) -> None:
        """... and of a deleted one."""

    def save(self, form: Any, user: Any, actor: str, session: Any = None) -> Any:
        from processes import control, services

        try:
            obj = services.save_definition(form, user, actor=actor, **self.save_kwargs(form, session))
        except control.ControlError as e:
            raise ValueProblem(str(e)) from None
        if session is not None:
            self.saved(obj, session)
        return obj

    def delete(self, obj: Any, user: Any, actor: str, session: Any = None) -> None:
        from processes import control, services

        try:
            services.delete_definition(obj, user, actor=actor)
        except control.ControlError as e:
            raise ValueProblem(str(e)) from None
        if session is not None:
            self.deleted(obj, session)

    def stop(self, obj: Any, user: Any) -> None:
        from processes import control

        obj = control.request(obj, STOP, user, channel="cpf merge")
        control.wait_settled(obj, STOP, obj.stop_timeout + 5)

    def start(self, obj: Any, user: Any) -> None:
        from processes import control

        current = self.model.objects.filter(pk=obj.pk).first()
        if current is not None:
            control.request(current, START, user, channel="cpf merge")
