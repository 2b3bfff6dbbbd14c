"""From a web application definition to what the process layer runs: its run directory,
socket, log file, and the checks made before a start.

The engines' command lines come from webapps/runtime/ (no Django there); this module
turns a WebApp row into their arguments.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from portal import paths
from portal.process import checks
from portal.process.checks import CheckFailure
from portal.process.spec import Spec

if TYPE_CHECKING:
    from portal.process.accounts import Account
from processes.adapters import InstallPlan, ProcessAdapter, StartStep, hosted_sandbox
from webapps import hosts as webapp_hosts
from webapps.models import RUNTIME_FIELDS, WebApp
from webapps.runtime import engines

SOCKET_NAME = engines.SOCKET_NAME
# Where a definition's requirements file is made into its own virtualenv.
VENV_FOLDER = "venvs"


def run_dir(webapp: WebApp) -> Path:
    return paths.RUN_DIR / "webapps" / str(webapp.run_key)


def hosted_dir(webapp: WebApp) -> Path:
    """Its home, owned by the user it runs as: virtualenvs, caches (outside var/)."""
    return paths.HOSTED_DIR / "webapps" / str(webapp.run_key)


def home(webapp: WebApp) -> Path:
    """The folder its processes may write (HOME); its virtualenvs are beside it."""
    return hosted_dir(webapp) / "home"


def socket_path(webapp: WebApp) -> Path:
    """The unix socket the front connects to: bound by the keeper in the run directory (the
    portal's, 0700) and handed to the engine, never in the home the application can write,
    where it could put a link in its place."""
    return run_dir(webapp) / SOCKET_NAME


def log_folder() -> Path:
    return WEBAPPS.log_folder()


def log_name(path: str) -> str:
    """A file name for an application's path: "/" becomes "+", which a path cannot hold, so two
    applications never share a default log (``/a/b`` and ``/a_b`` give ``a+b`` and ``a_b``)."""
    return path.strip("/").replace("/", "+") + ".log"


def default_log_path(webapp: WebApp) -> Path:
    return WEBAPPS.default_log_path(webapp)


def log_path(webapp: WebApp) -> Path:
    return WEBAPPS.log_path(webapp)


def log_file_problem(webapp: WebApp, path: str | None = None) -> CheckFailure | None:
    """Why this application may not write or show ``path`` (default: its log file), or None."""
    return WEBAPPS.log_file_problem(webapp, path)


def venv_root(webapp: WebApp) -> Path:
    return hosted_dir(webapp) / VENV_FOLDER


def python_of(webapp: WebApp) -> str:
    """The interpreter that runs the engine: the application's virtualenv (from its requirements
    file, or its folder's requirements.txt), or the one given, or the portal's own."""
    if webapp.requirements:
        from webapps.runtime.venvs import CURRENT

        return str(venv_root(webapp) / CURRENT / "bin" / "python")
    return webapp.interpreter


def app_environment(webapp: WebApp) -> dict[str, str]:
    """The definition's variables (secret ones included: the application needs them), with the
    portal's directory on PYTHONPATH so that ``gateways.client`` imports."""
    env = {**(webapp.environment or {}), **(webapp.secret_environment or {})}
    extra = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (extra, str(settings.BASE_DIR)) if p)
    return env


def app_run(webapp: WebApp) -> engines.AppRun:
    log = log_path(webapp)
    return engines.AppRun(
        mount=webapp.name,
        directory=webapp.directory,
        module=webapp.module,
        callable=webapp.callable,
        socket=str(socket_path(webapp)),
        protocol=webapp.protocol,
        engine=webapp.engine_name,
        workers=webapp.workers,
        threads=webapp.threads,
        debug=webapp.debug,
        python=python_of(webapp),
        env=app_environment(webapp),
        secret_env=sorted(webapp.secret_environment or {}),
        log_file=str(log),
    )


def build_spec(webapp: WebApp) -> Spec:
    """The keeper's spec: the engine on the application's socket, ready when it answers HTTP there.
    The secret variables are named in ``secret_env``: the keeper never writes their values."""
    spec = engines.build_spec(
        app_run(webapp),
        name=webapp.name,
        log_roots=list(settings.PORTAL_LOG_ROOTS),
        restart_policy=webapp.restart_policy,
        init_timeout=float(webapp.init_timeout),
    )
    spec.stop_timeout = float(webapp.stop_timeout)
    return spec


def preflight(webapp: WebApp, account: Account | None = None, build: bool = True) -> CheckFailure | None:
    """What would make a start fail, said before the start, each with its fix. Whatever runs the
    application's interpreter runs as ``account``, the user its engine will run as. ``build``:
    build its virtualenv first (a start has done so in the step before: False)."""
    if not os.path.isdir(webapp.directory):
        return CheckFailure("directory-missing", f"the application directory {webapp.directory} does not exist "
                            "on this host; create it, or edit the definition")
    failure = log_file_problem(webapp)
    if failure is not None:
        return failure
    if webapp.requirements and build:
        failure = ensure_virtualenv(webapp, account)
        if failure is not None:
            return failure
    python = python_of(webapp)
    problems = app_run(webapp).problems()
    # Each check below starts the application's interpreter once (about 30 to 60 ms each, most of
    # a start's own time): they run side by side, and their answers are read in the order a
    # person fixes them (the interpreter, its engine, the definition, the import), so a start
    # says the same first problem as when they ran one after the other.
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4, thread_name_prefix="preflight") as pool:
        python_check = pool.submit(checks.check_python, python, account)
        engine_check = pool.submit(engines.check_engine, python, webapp.engine_name, account)
        warnings = pool.submit(engines.engine_warnings, python, webapp.engine_name, account)
        app_check = pool.submit(_check_import, webapp, python, account) if not problems else None
        failure = python_check.result() or engine_check.result()
        if failure is not None:
            return failure
        from processes import sync

        for warning in warnings.result():
            sync.record(webapp, message=f"Starting all the same: {warning}", trigger="system", level="warning",
                        host=settings.PORTAL_HOST_NAME)
        if problems:
            return CheckFailure("definition", "; ".join(problems))
        result = app_check.result()
    if result.ok:
        return None
    from webapps.checks import missing_package

    if result.code == "package-missing":
        problem = missing_package(result, directory=webapp.directory, requirements_file=webapp.requirements)
        return CheckFailure(f"app-{result.code}", problem.message.rstrip("."))
    tail = f" ({result.traceback[-1].strip()})" if result.traceback and result.code == "import-failed" else ""
    return CheckFailure(f"app-{result.code}", f"{result.message}{tail}")


def _check_import(webapp: WebApp, python: str, account: Account | None) -> Any:
    """The application's import in its interpreter, as its user, in its sandbox (webapps.runtime.appcheck)."""
    import tempfile

    from portal.process.accounts import own_folder
    from webapps.checks import check_environment, check_sandbox
    from webapps.runtime.appcheck import check_app

    with tempfile.TemporaryDirectory(prefix="appcheck-") as scratch:
        own_folder(scratch, account)
        # Its HOME (its user's) writable as its engine has it: what its import does at start, it does here.
        own_home = account.home if account else ""
        env = {**check_environment(webapp.name, app_environment(webapp)), **(account.env() if account else {})}
        return check_app(python, webapp.directory, webapp.module, webapp.callable, webapp.protocol, env=env,
                         sandbox=check_sandbox(python, webapp.directory, scratch, home=own_home), account=account)


def venv_needs_build(webapp: WebApp) -> bool:
    """Is its virtualenv missing or stale (False when it is current, or cannot be checked: the
    build step then says why at once)?"""
    from webapps.runtime.venvs import VenvError, venv_state

    if not webapp.requirements:
        return False
    try:
        return venv_state(venv_root(webapp), webapp.requirements, webapp.engine_name) != "current"
    except VenvError:
        return False


def ensure_virtualenv(webapp: WebApp, account: Account | None = None,
                      cancel: threading.Event | None = None) -> CheckFailure | None:
    """Build (or rebuild, when the requirements file changed) the application's virtualenv, with its
    engine: the first step of its start (WebAppAdapter.start_steps), on the host's build worker.
    pip's lines go to the row's startup details as they come (the page polls them), its outcome to
    the Activity. The build (pip, and whatever build code a requirement runs) runs as ``account``,
    in the application's sandbox: :func:`build_virtualenv`. ``cancel`` set (a later request, a
    Stop) stops the build where it is; the half-built virtualenv is never used (runtime/venvs.py)."""
    import time

    from processes import sync
    from webapps.runtime.venvs import VenvError, venv_state

    requirements = webapp.requirements
    try:
        state = venv_state(venv_root(webapp), requirements, webapp.engine_name)
    except VenvError as e:
        return CheckFailure("venv-failed", f"the virtualenv cannot be built: {e}")
    if state == "current":
        return None
    # At once, before pip's first line: the pages say "building its virtualenv" from now on.
    WebApp.groups.filter(pk=webapp.pk).update(startup={"venv": {"state": "building", "lines": []}})
    lines: list[str] = []
    started = time.monotonic()
    what = "Rebuilding" if state == "stale" else "Building"

    def progress(line: str) -> None:
        lines.append(line)
        WebApp.groups.filter(pk=webapp.pk).update(startup={"venv": {"state": "building", "lines": lines[-20:]}})

    host = settings.PORTAL_HOST_NAME
    from portal.process.packages import describe
    from processes.adapters import package_environment

    found = " (its folder's: the definition names neither an interpreter nor a requirements file)" \
        if not webapp.requirements_file else ""
    index = package_environment()
    where = f", packages from {describe(index)}" if index else ""
    sync.record(webapp, message=f"{what} the virtualenv from {requirements}{found} with {webapp.engine_name}{where}",
                trigger="system", host=host)
    try:
        venv = build_virtualenv(webapp, account, progress, cancel)
    except VenvError as e:
        if cancel is not None and cancel.is_set():
            sync.record(webapp, message=f"Virtualenv build stopped after {time.monotonic() - started:.1f} s: "
                                        "a later request replaced its start", trigger="system", host=host)
            WebApp.groups.filter(pk=webapp.pk).update(startup={"venv": {"state": "stopped", "lines": lines[-20:]}})
            return CheckFailure("venv-stopped", "the virtualenv build was stopped by a later request")
        # pip's ERROR: lines (in the error) say the cause; its whole output goes to the detail page.
        output = f"; pip's whole output is under “Last start” on {webapp.name}'s page" if e.lines else ""
        message = f"the virtualenv from {requirements} could not be built: {e}{output}"
        sync.record(webapp, message=f"Virtualenv not built: {message}", trigger="system", level="error", host=host)
        return CheckFailure("venv-failed", message, output=e.lines)
    sync.record(webapp, message=f"Virtualenv {venv.path} ready in {time.monotonic() - started:.1f} s",
                trigger="system", host=host)
    return None


def build_virtualenv(webapp: WebApp, account: Account | None, progress: Any,
                     cancel: threading.Event | None = None) -> Any:
    """webapps.runtime.venvs.build_as for ``webapp``: as its user, in a sandbox where var/ and the
    other applications' folders are hidden, the portal's installation read-only, its own folder,
    its application's folder (a local package builds in place) and /tmp writable. Only pip's own
    settings (PIP_*, proxies) of the portal's environment and the site's package index
    (PORTAL_PACKAGE_INDEX, PORTAL_PACKAGE_FIND_LINKS) reach it."""

    from portal.process import sandbox as landlock
    from webapps.runtime.venvs import VenvError, build_as

    home = hosted_dir(webapp)  # the whole of its folder: the build writes the virtualenvs beside its home
    requirements = webapp.requirements
    policy = hosted_sandbox(str(home), writable=[webapp.directory, os.path.dirname(os.path.abspath(requirements))])
    confined, _, refused = landlock.decide(policy)
    if refused:
        raise VenvError(refused)
    prefix = landlock.wrap([], policy) if confined else []  # the wrapper and its arguments, up to "--"
    return build_as(venv_root(webapp), requirements, webapp.engine_name, argv_prefix=prefix,
                    cwd=str(home), popen_kwargs=account.popen_kwargs() if account else {}, progress=progress,
                    env=build_environment(webapp, account), cancel=cancel)


def build_environment(webapp: WebApp, account: Account | None) -> dict[str, str]:
    """The build's environment: the allowlist, pip's own settings of the portal's environment
    (PIP_*, proxies) under the site's package index and wheel folders (PORTAL_PACKAGE_*), its
    home, and the portal's code for ``-m webapps.runtime.venvs``. Never the application's."""
    from portal.process.spec import inherited_env
    from processes.adapters import package_environment
    from webapps.runtime.venvs import PIP_ENV_PREFIXES

    return {**inherited_env(), **{k: v for k, v in os.environ.items() if k.startswith(PIP_ENV_PREFIXES)},
            **package_environment(), "HOME": str(hosted_dir(webapp)), "PYTHONPATH": str(settings.BASE_DIR),
            **(account.env() if account else {})}


def apps_origin(request: Any) -> str:
    """Where the applications answer: the edge in front of the hosts when one is configured
    (PORTAL_APPS_URL), else the front on the portal's own host name and the apps port (PORTAL_APPS_PORT)."""
    from urllib.parse import urlsplit

    if settings.PORTAL_APPS_URL:
        return settings.PORTAL_APPS_URL
    host = urlsplit("//" + request.get_host()).hostname or "localhost"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if request.is_secure() else "http"
    return f"{scheme}://{host}:{settings.PORTAL_APPS_PORT}"


def environment_rows(webapp: WebApp) -> list[tuple[str, str, bool]]:
    """(name, value, secret) for the page: a secret's value is never shown."""
    rows = [(k, v, False) for k, v in sorted((webapp.environment or {}).items())]
    rows += [(k, "", True) for k in sorted(webapp.secret_environment or {})]
    return rows


class WebAppAdapter(ProcessAdapter):
    kind = "webapp"
    label = "web application"
    label_plural = "web applications"
    model = WebApp
    run_folder = "webapps"
    # The engines' launchers, the virtualenv build and the application check run as its user.
    hosted_code = ("webapps", "webapps/runtime", "webapps/runtime/serve", "webapps/runtime/serve_granian")
    runtime_fields = RUNTIME_FIELDS
    # The pages.
    app = "webapps"
    export_kind = "applications"
    search_fields = ("name", "directory")
    search_hint = "path or directory"
    empty_text = ("A web application is a Flask, Django, FastAPI or any other WSGI or ASGI application that the "
                  "portal runs and serves at a path such as /flask.")
    advanced_fields = ("hosts", "engine", "workers", "threads", "restart_policy", "init_timeout", "stop_timeout",
                       "run_as", "allow_root", "namespace", "match_roles")
    advanced_label = "Engine and advanced settings"
    process_title = "Process group"
    delete_note = "the application's files stay where they are"

    def list_lead(self, request: Any) -> str:
        return (f"Python WSGI and ASGI applications, each served at its path on the applications' port "
                f"({apps_origin(request)}) by a process group of its own.")

    def describe(self, obj: WebApp) -> str:
        return f"{obj.get_protocol_display()} application under {obj.engine_name}"

    def summary(self, obj: WebApp) -> str:
        return obj.directory

    def page_context(self, request: Any) -> dict[str, Any]:
        return {"apps_origin": apps_origin(request)}

    def open_url(self, request: Any, obj: WebApp) -> str | None:
        return f"{apps_origin(request)}{obj.apps_url}"

    def detail_context(self, request: Any, obj: WebApp) -> dict[str, Any]:
        from webapps.figures import figures_context

        return {"environment": environment_rows(obj), **figures_context(obj)}

    def preflight(self, obj: WebApp) -> CheckFailure | None:
        return preflight(obj, self.account(obj))

    def start_steps(self, obj: WebApp) -> list[StartStep]:
        """Its virtualenv (when it has a requirements file), built on the host's build worker;
        then the checks, which run the application's import in that virtualenv."""
        steps = [StartStep("the checks", lambda obj, account, cancel: preflight(obj, account, build=False))]
        if obj.requirements:
            steps.insert(0, StartStep("the virtualenv build", ensure_virtualenv, long=True, needed=venv_needs_build))
        return steps

    def install_of(self, obj: WebApp) -> InstallPlan | None:
        """Its engine, into the interpreter that runs it: ``python -m pip install <engine>``."""
        python, engine = python_of(obj), obj.engine_name
        return InstallPlan(what=engine, python=python, has=f"runs {engine}", refusal="engine-missing",
                           check=lambda: engines.check_engine(python, engine),
                           command=lambda argv: engines.install_command(python, engine))

    def build_spec(self, obj: WebApp) -> Spec:
        return build_spec(obj)

    def sandbox(self, obj: WebApp) -> dict[str, Any]:
        """Its own folder writable (the examples keep their SQLite file there), its virtualenv readable."""
        return self.sandbox_policy(obj, writable=[obj.directory],
                                   read_only=[str(venv_root(obj))] if obj.requirements else [])

    def hosted_dir(self, obj: WebApp) -> Path:
        return hosted_dir(obj)

    def home(self, obj: WebApp) -> Path:
        return home(obj)

    def log_name(self, obj: WebApp) -> str:
        return log_name(obj.name or "/app")

    def run_dir(self, obj: WebApp) -> Path:
        return run_dir(obj)

    def status_fields(self, obj: WebApp) -> dict[str, Any]:
        fields = {"path": obj.name, "protocol": obj.protocol, "engine": obj.engine_name,
                  "socket": str(socket_path(obj)), "host": webapp_hosts.host_of(obj)}
        if obj.primary_id is None and obj.hosts:
            summary = obj.host_groups
            fields["hosts"] = [{"host": g["host"], "state": g["state"], "pid": g["group"].pid,
                                "host_down": g["down"]} for g in summary["groups"]]
        return fields

    def host_of(self, obj: WebApp) -> str:
        return webapp_hosts.host_of(obj)

    def unknown_host(self, obj: WebApp) -> CheckFailure | None:
        """Its host is down, or no worker has ever reported from it (a name typed in Hosts)."""
        from processes.hosts import down_failure

        failure = down_failure(webapp_hosts.host_of(obj))
        return CheckFailure("host-down", failure) if failure else None

    def saved(self, obj: WebApp) -> None:
        webapp_hosts.sync_groups(obj)



# The one adapter of web applications (registered in WebappsConfig.ready()).
WEBAPPS = WebAppAdapter()
