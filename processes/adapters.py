"""What a kind of managed process tells the shared layer: one small adapter per kind.

The tasks, the journal sync, the watcher, the control service, the Activity pages and
the admin of runs and activity are written once, in this app; the points where kinds
differ are the hooks of an adapter. A kind registers one adapter from its
``AppConfig.ready()``::

    from processes.adapters import register
    register(GatewayAdapter())

and the shared code finds it with ``adapter_for("gateway")`` or ``adapter_of(row)``.

An adapter must give (no default):

``kind``                  a short name stored in Run/Activity.kind ("gateway", "webapp").
``label``                 what messages call one of them ("gateway", "web application").
``label_plural``          ... and several ("gateways", "web applications").
``model``                 the definition's model, a subclass of ``processes.models.ManagedProcess``;
                          its rows have ``name`` and ``get_absolute_url()``.
``run_folder``            the folder of RUN_DIR that holds this kind's run directories ("gateways").
``preflight(obj)``        -> ``CheckFailure | None``: what would make a start fail, found before
                          the start (on the process's host, in the start task); the failure's
                          message says the fix. None: start it.
``build_spec(obj)``       -> ``portal.process.spec.Spec``: what the keeper runs.

and may override (the default in brackets):

``runtime_fields``        names of the definition's fields that may change only while it is
                          stopped [()]; ``control.check_definition_change`` refuses the rest.
``log_folder()``          -> Path | None: the folder of every definition's default log file, where
                          no definition of any kind may choose its own (check_log_file) [None].
``hosted_code``           the folders of the portal (relative to it, not walked below) whose modules
                          its hosted processes import, whose bytecode is opened to hosted users
                          (portal.process.accounts.share_bytecode) [()].
``run_dir(obj)``          -> Path: the keeper's run directory [RUN_DIR/run_folder/run_key]; the
                          watcher finds run directories as ``run_root()/run_key``, so an
                          override must keep that place.
``display_command(obj)``  -> str: the command as shown, secrets masked [build_spec(obj).display_command()].
``host_of(obj)``          -> str: the host whose worker starts it [PORTAL_HOST_NAME].
``queue_of(obj)``         -> str: that host's Celery queue [host_queue(host_of(obj))].
``url_of(obj)``           -> str: the object's page [obj.get_absolute_url()].
``list_url()``            -> str | None: the page that lists them all (breadcrumbs) [None].
``activity_url(name)``    -> str | None: the Activity page of the one named so, linked from the
                          page of every process's activity [None: no link].
``port_of(obj)``          -> int | None: the TCP port written on Activity rows [None].
``restart_policy(obj)``   -> "never" | "on-failure" | "always": whether reconcile restarts a
                          process that died unseen [obj.restart_policy, or "never"].
``stop_timeout(obj)``     -> float: seconds between asking it to stop and killing it
                          [obj.stop_timeout, or 5].
``start_steps(obj)``      -> list[StartStep]: what its start does before the launch, in order,
                          each giving a CheckFailure to refuse the start; the pipeline
                          (processes/pipeline.py) runs them under the control lock and gives up
                          between them once a later request exists. A step marked ``long``
                          (a web application's virtualenv build) sends the start, when it has
                          work to do, to the host's build queue, and is told to stop (its
                          ``cancel`` event) when a later request comes [the preflight alone].
``install_of(obj)``       -> InstallPlan | None: what the install button beside a refused start
                          installs into its interpreter (msgpack, an engine) [None: no button].
``launch_warning(obj)``   -> str | None: a warning logged and written to Activity at each
                          start (a gateway open to the network) [None].
``status_fields(obj)``    -> dict: the kind's own fields in ``control.status_of`` (the CLI and
                          the API), e.g. server and port [{}].
``unknown_host(obj)``     -> CheckFailure | None: the process's host does not exist, so no
                          worker will ever take its task; the request is answered at once [None].
``hosted_dir(obj)``       -> Path: its home outside var/, owned by its account [HOSTED_DIR/run_folder/run_key].
``account(obj)``          -> Account | None: who its processes run as (processes/accounts.py).
``sandbox(obj)``          -> dict: the Landlock policy the keeper applies (portal.process.sandbox):
                          var/ hidden but for its run directory, the portal's code read-only, the
                          rest of the host read-only [sandbox_policy(obj)].

and, for the pages every kind shares (processes/definition_views.py, templates/processes/definitions/):

``app``                   the kind's app: the namespace of its URLs, the folder of its templates
                          and the list's name in the templates ("gateways").
``search_fields``         the fields the list's search looks in [("name",)]; ``search_hint``
                          says them in words for the search box ["name"].
``list_lead(request)``    -> str: the list page's first line; ``empty_text``: what one is, on an
                          empty list; ``summary(obj)``: a few words in its delete confirmation.
``list_columns``          (header, attribute) of the list's own columns, when the kind has no
                          ``<app>/_row_cells.html`` of its own [()].
``advanced_fields``       the form's fields under "Advanced settings" [supervision and user].
``describe(obj)``         -> str: the detail page's status line ("Python gateway on 127.0.0.1:25001").
``page_context(request)`` -> dict: what every page of the kind shows beside the definition [{}].
``detail_context(request, obj)`` -> dict: what its detail page shows beside the shared panels [{}].
``open_url(request, obj)`` -> str | None: where a user opens what it serves (a web application) [None].
``log_name(obj)``         -> str: the file name of its default log, in ``log_folder()`` ["NAME.log"].
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from django.conf import settings
from django.utils.text import capfirst

from portal import paths
from portal.queues import host_queue
from processes.kinds import adapter_for, adapter_of, all_adapters, kinds_text, register  # noqa: F401  (callers')

if TYPE_CHECKING:
    from portal.process.accounts import Account
    from portal.process.checks import CheckFailure
    from portal.process.spec import Spec
    from processes.models import ManagedProcess


def _always(obj: Any) -> bool:
    return True


@dataclass(frozen=True)
class StartStep:
    """One thing a start does before its launch (``ProcessAdapter.start_steps``)."""

    name: str  # in words, for the Activity: "the virtualenv build"
    # (obj, account, cancel) -> None to go on, or the failure that refuses the start. ``cancel`` is
    # set when a later request replaced this start: a long step stops its work and returns.
    run: Callable[[Any, Account | None, threading.Event], CheckFailure | None]
    # May take minutes: its start then runs on the host's build worker (processes/pipeline.py).
    long: bool = False
    # Has it work to do now? Asked when the task is sent, to pick the queue; a step always runs.
    needed: Callable[[Any], bool] = _always


@dataclass(frozen=True)
class InstallPlan:
    """What the install button installs (``ProcessAdapter.install_of``), run by processes.tasks."""

    what: str  # what it installs, in words: "msgpack", "gunicorn"
    python: str  # the interpreter it installs into
    has: str  # what it can do once installed, after "<python> now": "imports msgpack"
    check: Callable[[], CheckFailure | None]  # what is missing now, with the command (fix_argv)
    command: Callable[[list[str]], str]  # that command, as the messages show it
    refusal: str  # the code of the start's refusal that the install answers ("modules-missing")


class ProcessAdapter:
    """The base of every kind's adapter: see the module's docstring for each hook."""

    kind: ClassVar[str]
    label: ClassVar[str]
    label_plural: ClassVar[str]
    model: ClassVar[type[ManagedProcess]]
    run_folder: ClassVar[str]
    runtime_fields: ClassVar[tuple[str, ...]] = ()
    hosted_code: ClassVar[tuple[str, ...]] = ()
    # The pages (processes/definition_views.py).
    app: ClassVar[str]
    search_fields: ClassVar[tuple[str, ...]] = ("name",)
    search_hint: ClassVar[str] = "name"
    empty_text: ClassVar[str] = ""
    list_columns: ClassVar[tuple[tuple[str, str], ...]] = ()
    advanced_fields: ClassVar[tuple[str, ...]] = (
        "restart_policy", "init_timeout", "stop_timeout", "run_as", "allow_root")
    advanced_label: ClassVar[str] = "Advanced settings"
    export_kind: ClassVar[str] = ""  # the merge file's export option (?kind=...): its registry's plural
    process_title: ClassVar[str] = "Process"  # the live panel's tile: "Process group" for several
    counts_connections: ClassVar[bool] = False  # the live panel shows the open TCP connections
    delete_note: ClassVar[str] = ""  # what the delete leaves, after "will be deleted; "
    after_create: ClassVar[str] = "detail"  # the page a create leads to: its "detail", or the "list"

    # --- must be given -----------------------------------------------------------------------

    def preflight(self, obj: Any) -> CheckFailure | None:
        raise NotImplementedError

    def build_spec(self, obj: Any) -> Spec:
        raise NotImplementedError

    # --- may be overridden -------------------------------------------------------------------

    def run_root(self) -> Path:
        return paths.RUN_DIR / self.run_folder

    def run_dir(self, obj: Any) -> Path:
        return self.run_root() / str(obj.run_key)

    def display_command(self, obj: Any) -> str:
        return self.build_spec(obj).display_command()

    def host_of(self, obj: Any) -> str:
        return settings.PORTAL_HOST_NAME

    def queue_of(self, obj: Any) -> str:
        return host_queue(self.host_of(obj))

    def url_of(self, obj: Any) -> str:
        return obj.get_absolute_url()

    def list_url(self) -> str | None:
        from django.urls import reverse

        return reverse(f"{self.app}:list")

    def activity_url(self, name: str) -> str | None:
        """The Activity page of the definition named ``name`` (by its ``url_arg``: a web
        application's path without its first slash)."""
        from django.urls import reverse

        return reverse(f"{self.app}:activity", args=[name.lstrip("/")])

    # --- the pages ---------------------------------------------------------------------------

    def describe(self, obj: Any) -> str:
        return capfirst(self.label)

    def summary(self, obj: Any) -> str:
        """A few words that tell it apart in a confirmation: "127.0.0.1:25001", a folder [""]."""
        return ""

    def list_lead(self, request: Any) -> str:
        return ""

    def page_context(self, request: Any) -> dict[str, Any]:
        return {}

    def detail_context(self, request: Any, obj: Any) -> dict[str, Any]:
        return {}

    def open_url(self, request: Any, obj: Any) -> str | None:
        return None

    # --- the log -----------------------------------------------------------------------------

    def log_name(self, obj: Any) -> str:
        return f"{obj.name}.log"

    def default_log_path(self, obj: Any) -> Path:
        folder = self.log_folder()
        if folder is None:
            raise ValueError(f"{self.label_plural} have no log folder: give the adapter a log_folder()")
        return folder / self.log_name(obj)

    def log_path(self, obj: Any) -> Path:
        """The definition's log file, or the portal's default one for it."""
        return Path(obj.log_file) if getattr(obj, "log_file", "") else self.default_log_path(obj)

    def log_file_problem(self, obj: Any, path: str | None = None) -> CheckFailure | None:
        """Why this definition may not write or show ``path`` (default: its log file), or None:
        outside the log folders, inside var/ but for them, another definition's default file."""
        from portal.process.checks import check_log_file

        return check_log_file(
            path or str(self.log_path(obj)),
            settings.PORTAL_LOG_ROOTS,
            var_dir=str(paths.VAR_DIR),
            run_dir=str(self.run_dir(obj)),
            own_default=str(self.default_log_path(obj)),
            default_folders=default_log_folders(),
            label=self.label,
        )

    def port_of(self, obj: Any) -> int | None:
        return None

    def restart_policy(self, obj: Any) -> str:
        return getattr(obj, "restart_policy", "never")

    def stop_timeout(self, obj: Any) -> float:
        return float(getattr(obj, "stop_timeout", 5))

    def launch_warning(self, obj: Any) -> str | None:
        return None

    def log_folder(self) -> Path | None:
        """The folder of its default logs: var/log/<run_folder>."""
        return paths.LOG_DIR.resolve() / self.run_folder

    def start_steps(self, obj: Any) -> list[StartStep]:
        return [StartStep("the checks", lambda obj, account, cancel: self.preflight(obj))]

    def install_of(self, obj: Any) -> InstallPlan | None:
        return None

    def status_fields(self, obj: Any) -> dict[str, Any]:
        return {}

    def unknown_host(self, obj: Any) -> CheckFailure | None:
        """Why no worker would take its task now: its host reported once and then fell silent
        (processes/hosts.py). The request is then answered at once, not left in a queue."""
        from portal.process.checks import CheckFailure
        from processes.hosts import down_failure, is_down

        host = self.host_of(obj)
        return CheckFailure("host-down", down_failure(host) or "") if is_down(host) else None

    def saved(self, obj: Any) -> None:
        """Called in the transaction that saved the definition ``obj`` (processes/services.py):
        what the kind keeps beside it follows (a web application's rows on its further hosts)."""

    def sandbox(self, obj: Any) -> dict[str, Any]:
        return self.sandbox_policy(obj)

    def hosted_dir(self, obj: Any) -> Path:
        """Its home: the folder of its own (socket, virtualenv, caches), outside var/, which its
        account owns (portal/process/accounts.py)."""
        return paths.HOSTED_DIR / self.run_folder / str(obj.run_key)

    def home(self, obj: Any) -> Path:
        """The folder its processes may write (HOME: caches, a web application's socket), inside
        its hosted folder; beside it, what they may only read (a virtualenv)."""
        return self.hosted_dir(obj) / "home"

    def forget_hosted_folder(self, obj: Any) -> None:
        """Its folder (virtualenvs: tens of megabytes) goes once its delete is committed. shutil.rmtree
        removes through descriptors and follows no link, so links its user left there lead nowhere."""
        import shutil

        from django.db import transaction

        folder = self.hosted_dir(obj)
        transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))

    def account(self, obj: Any) -> Account | None:
        """Who its processes run as on this host (None: the portal's own user, which cannot switch);
        AccountError says why it may not start."""
        from processes.accounts import account_of

        return account_of(self.kind, obj, str(self.home(obj)))

    def prepare_account(self, obj: Any) -> Account | None:
        """The account, with its folder and home made and given to it (0700). A folder another user
        owns (its Run as changed) starts again empty: what the former user left there (a
        virtualenv, caches) is its, and a change of owner of each file could be led astray by the
        links and hard links it made; a virtualenv is built again at the start."""
        from portal.process.accounts import own_folder, reset_if_owned_by_another

        account = self.account(obj)
        reset_if_owned_by_another(str(self.hosted_dir(obj)), account)
        own_folder(str(self.hosted_dir(obj)), account)
        own_folder(str(self.home(obj)), account)
        return account

    def sandbox_policy(self, obj: Any, writable: list[str] = [], read_only: list[str] = [],  # noqa: B006
                       rest: str = "read-only") -> dict[str, Any]:
        """The policy of PORTAL_SANDBOX and PORTAL_SANDBOX_WRITABLE for ``obj``, plus ``writable``,
        ``read_only`` (folders inside its hosted folder it may read) and ``rest`` (the rest of the host)."""
        return hosted_sandbox(str(self.home(obj)), writable=writable, read_only=read_only, rest=rest)


def hosted_sandbox(run_dir: str, writable: Sequence[str] = (), read_only: Sequence[str] = (),
                   rest: str = "read-only") -> dict[str, Any]:
    """The Landlock policy of a process the portal starts for a definition, its check or its build:
    var/ and the hosted folders hidden but for ``run_dir`` (its own, writable), the portal's code
    read-only, with the settings PORTAL_SANDBOX and PORTAL_SANDBOX_WRITABLE."""
    from portal.process.sandbox import portal_policy

    return portal_policy(var_dir=str(paths.VAR_DIR), base_dir=str(settings.BASE_DIR), run_dir=run_dir,
                         writable=writable, read_only=read_only, rest=rest, mode=settings.PORTAL_SANDBOX,
                         extra_writable=settings.PORTAL_SANDBOX_WRITABLE, hidden=[str(paths.HOSTED_DIR)])


def package_environment() -> dict[str, str]:
    """pip's variables for the site's package index and wheel folders (PORTAL_PACKAGE_INDEX,
    PORTAL_PACKAGE_FIND_LINKS: portal/process/packages.py), for whatever the portal builds or
    installs for a definition of any kind; never part of a running process's environment."""
    return dict(settings.PORTAL_PACKAGE_ENV)


def default_log_folders() -> dict[str, str]:
    """The folder of each kind's default logs, with what one of that kind is called: a definition may
    choose none of them for its log file (but its own default), so that it never writes into another's."""
    return {str(folder): kind.label for kind in all_adapters() if (folder := kind.log_folder()) is not None}
