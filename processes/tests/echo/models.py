"""The echo server: a few lines of Python that answer each line with the definition's prefix."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse

from processes.models import Definition


class Echo(Definition):
    name = models.CharField(max_length=64, unique=True)
    port = models.PositiveIntegerField(validators=[MinValueValidator(1024), MaxValueValidator(65535)])
    prefix = models.CharField(max_length=20, blank=True, help_text="Put before each line it answers.")
    # Given to the process in its environment only: never shown, logged or recorded but as "changed".
    token = models.JSONField("secret token", default=dict, blank=True)

    AUDITED_FIELDS = ("name", "port", "prefix", "token", "log_file", "restart_policy", "init_timeout",
                      "stop_timeout", "run_as", "allow_root")
    SECRET_FIELDS = ("token",)
    SUMMARY_FIELDS = ("port",)

    class Meta:
        ordering = ["name"]

    def get_absolute_url(self) -> str:
        return reverse("echo:detail", args=[self.url_arg])
