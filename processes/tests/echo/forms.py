from typing import Any

from django import forms

from processes.forms import FieldFeedback
from processes.tests.echo.models import Echo


class EchoForm(FieldFeedback, forms.ModelForm):
    token_value = forms.CharField(required=False, label="Secret token")

    class Meta:
        model = Echo
        fields = ["name", "port", "prefix", "log_file", "restart_policy", "init_timeout", "stop_timeout",
                  "run_as", "allow_root"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.warnings: list[str] = []
        self.field_warnings: dict[str, list[str]] = {}
        if self.instance.pk:
            self.fields["name"].disabled = True

    def clean_prefix(self) -> str:
        prefix = self.cleaned_data["prefix"]
        if "\n" in prefix:
            raise forms.ValidationError("A prefix is one line: remove the line break.")
        if prefix.startswith("#"):
            self.field_warnings.setdefault("prefix", []).append("Its answers will read as comments to a shell.")
        return prefix

    def save(self, commit: bool = True) -> Echo:
        if self.cleaned_data.get("token_value"):
            self.instance.token = {"ECHO_TOKEN": self.cleaned_data["token_value"]}
        return super().save(commit)
