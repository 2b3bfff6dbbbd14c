"""What to run: the :class:`Spec` a keeper is given (RUN_DIR/spec.json)."""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from portal.process.probes import validate_probe
from portal.process.reload import validate_reload

RESTART_POLICIES = ("never", "on-failure", "always")
# The signals a stop may begin with (supervisor's stopsignal); KILL skips the grace time.
STOP_SIGNALS = ("TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2")

# The only variables a managed process (and its keeper) takes from the environment of
# whoever starts it: what any program needs to find its tools, speak the user's
# language and write temporary files. Everything else (the portal's secret key, its
# database and broker URLs, whatever the operator exported) stays with the portal; a
# definition adds its own variables through Spec.env, or names more in Spec.pass_env.
INHERITED_ENV = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM",
    "TMPDIR", "TMP", "TEMP", "SSL_CERT_FILE", "SSL_CERT_DIR",
})
INHERITED_ENV_PREFIXES = ("LC_",)


def inherited_env(environ: dict[str, str] | None = None, extra: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """The allowlisted part of ``environ`` (default: this process's), plus the names in ``extra``."""
    environ = dict(os.environ) if environ is None else environ
    return {k: v for k, v in environ.items()
            if k in INHERITED_ENV or k.startswith(INHERITED_ENV_PREFIXES) or k in extra}
MASK = "****"


@dataclass
class Spec:
    """A process to keep.

    ``argv`` is executed directly, never through a shell. The process gets only the
    allowlisted variables of its starter's environment (:data:`INHERITED_ENV`, plus the
    names in ``pass_env``) and ``env``; the values of the variables named in
    ``secret_env`` (and a gateway probe's ``verifier``) are never written to a log,
    status or event. They are kept only in spec.json (mode 0600 in a 0700 run dir),
    which the keeper needs to restart the process or to adopt it after a crash.

    ``probe`` decides when a start is ready (state running): one of the kinds of
    :mod:`portal.process.probes` (tcp, http, unix-http, or a function named by import
    path), or ``None`` - ready once the process has stayed up ``min(quick_secs,
    init_timeout)``. A probe's ``verifier`` and ``passphrase`` are secret.

    A probe may say ``"timeout"``: seconds one attempt may take (connect, handshake,
    answer) before the keeper gives it up and tries again, still within init_timeout.
    Default 0.25 s.

    ``listen`` (None: off) makes the keeper bind a unix socket in a folder of its own and hand
    the process its descriptor (:mod:`portal.process.listener`).

    ``reload`` (None: off) makes the keeper watch files and reload the process when one
    changes, by a signal (graceful) or by a restart: :mod:`portal.process.reload`.
    """

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    pass_env: list[str] = field(default_factory=list)  # more names to take from the starter's environment
    secret_env: list[str] = field(default_factory=list)
    cwd: str | None = None
    log_file: str | None = None  # None: RUN_DIR/output.log
    # Folders the log file must really be in (after links); None: anywhere.
    log_roots: list[str] | None = None
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    probe: dict[str, Any] | None = None
    init_timeout: float = 5.0
    restart_policy: str = "on-failure"
    expected_exit_codes: list[int] = field(default_factory=lambda: [0])
    backoff_base: float = 0.5
    backoff_max: float = 30.0
    max_quick_failures: int = 3
    quick_secs: float = 2.0
    stop_timeout: float = 5.0
    # What a stop sends first, to the process group (one of STOP_SIGNALS, without "SIG"); SIGKILL
    # follows after stop_timeout.
    stop_signal: str = "TERM"
    # Reload on a code change (a web application's debug mode): see portal.process.reload.
    reload: dict[str, Any] | None = None
    # Landlock policy applied between fork and exec (portal.process.sandbox); None: not sandboxed.
    sandbox: dict[str, Any] | None = None
    # Who the process runs as (portal.process.accounts.Account.to_dict()); None: the keeper's user.
    account: dict[str, Any] | None = None
    # A unix socket the keeper binds and hands down ({"path", "mode"}; argv names it as
    # "{listen_fd}"): portal.process.listener. None: the process binds its own, if any.
    listen: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with a readable message when the spec cannot be run."""
        if not self.name:
            raise ValueError("a process needs a name")
        if not self.argv or not all(isinstance(a, str) and a for a in self.argv):
            raise ValueError("argv must be a non-empty list of non-empty strings")
        if self.restart_policy not in RESTART_POLICIES:
            raise ValueError(
                f"restart_policy {self.restart_policy!r} is not one of {', '.join(RESTART_POLICIES)}"
            )
        if self.stop_signal not in STOP_SIGNALS:
            raise ValueError(f"stop_signal {self.stop_signal!r} is not one of {', '.join(STOP_SIGNALS)}")
        if self.probe is not None:
            validate_probe(self.probe)
        if self.reload is not None:
            validate_reload(self.reload)
        if self.listen is not None:
            from portal.process.listener import validate_listen

            validate_listen(self.listen)
        for name in ("init_timeout", "stop_timeout", "backoff_base", "backoff_max", "quick_secs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.max_quick_failures < 1:
            raise ValueError("max_quick_failures must be at least 1")
        if self.log_backups < 0 or self.log_max_bytes < 1:
            raise ValueError("log_backups must be >= 0 and log_max_bytes >= 1")

    # -- serialisation -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Everything, secrets included: only for spec.json."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown spec fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Spec:
        return cls.from_dict(json.loads(text))

    # -- secrets and display -------------------------------------------------------

    def child_env(self, environ: dict[str, str] | None = None) -> dict[str, str]:
        """The whole environment of the process: the allowlisted inherited part, the account's
        HOME, USER and LOGNAME (never the portal user's), then ``env``."""
        own = {"HOME": self.account["home"], "USER": self.account["name"], "LOGNAME": self.account["name"]} \
            if self.account else {}
        return {**inherited_env(environ, self.pass_env), **own, **self.env}

    def secret_values(self, environ: dict[str, str] | None = None) -> list[str]:
        """Values that must never be shown, longest first (so overlaps mask fully)."""
        environ = os.environ if environ is None else environ
        values = set()
        for name in self.secret_env:
            value = self.env.get(name, environ.get(name))
            if value:
                values.add(value)
        for key in ("verifier", "passphrase"):
            if self.probe and self.probe.get(key):
                values.add(str(self.probe[key]))
        return sorted(values, key=len, reverse=True)

    def redact(self, text: str, environ: dict[str, str] | None = None) -> str:
        """``text`` with every secret value replaced by ****."""
        for value in self.secret_values(environ):
            text = text.replace(value, MASK)
        return text

    def masked_argv(self) -> list[str]:
        """argv for display. Secrets belong in env, but mask them if they slip in."""
        return [self.redact(arg) for arg in self.argv]

    def display_command(self) -> str:
        """The command as a copy-pasteable line, secrets masked; env shown by name only."""
        secret_names = [name for name in self.secret_env]
        prefix = " ".join(f"{name}={MASK}" for name in secret_names)
        command = shlex.join(self.masked_argv())
        return f"{prefix} {command}" if prefix else command

    def redacted_dict(self) -> dict[str, Any]:
        """to_dict() safe for pages and logs."""
        data = self.to_dict()
        data["env"] = {k: (MASK if k in self.secret_env else self.redact(v)) for k, v in self.env.items()}
        data["argv"] = self.masked_argv()
        for key in ("verifier", "passphrase"):
            if data.get("probe") and data["probe"].get(key):
                data["probe"] = dict(data["probe"], **{key: MASK})
        return data

    # -- policy ----------------------------------------------------------------------

    @property
    def stop_signum(self) -> int:
        """The number of ``stop_signal`` (signal.SIGTERM for "TERM")."""
        import signal

        return int(getattr(signal, f"SIG{self.stop_signal}"))

    def backoff_delay(self, failures: int) -> float:
        """Delay before retry number ``failures`` (1-based): base * 2^(n-1), capped."""
        if failures < 1:
            return 0.0
        return min(self.backoff_base * (2 ** (failures - 1)), self.backoff_max)

    def is_expected_exit(self, exit_code: int | None) -> bool | None:
        """None when the exit status is unknown (e.g. an adopted process)."""
        if exit_code is None:
            return None
        return exit_code in self.expected_exit_codes

    def should_restart(self, expected: bool | None) -> bool:
        """After an exit from running. An unknown status counts as unexpected."""
        if self.restart_policy == "always":
            return True
        if self.restart_policy == "on-failure":
            return expected is not True
        return False
