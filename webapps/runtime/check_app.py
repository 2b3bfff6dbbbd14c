"""Run by the application's own interpreter: does the module import, and is the callable WSGI or ASGI?

    python -c BOOTSTRAP check_app.py DIRECTORY MODULE CALLABLE wsgi|asgi

Standard library only and no import of the portal: the interpreter is any Python 3.9+ the
operator chose. It runs as the engine does (``site`` and the application's ``PYTHONPATH`` with it,
see appcheck.py), started from ``-c`` (appcheck.BOOTSTRAP) so that this file's folder is not on
``sys.path``; the application directory goes first. The answer is one line on stdout starting with
:data:`MARKER`, then JSON: ``{"ok": bool, "code": str, "message": str, "kind": str | null,
"traceback": [lines], "package": str | null, "importer": str | null}``; ``package`` and
``importer`` for a "package-missing" answer: the module the interpreter lacks, and the file that
imports it. A traceback holds the application's frames only: this file's frames and importlib's
say nothing to the person who wrote the application. Imported as a module it does nothing
(``webapps.runtime.appcheck`` only needs its path).
"""

import importlib.util
import inspect
import json
import os
import sys
import traceback

MARKER = "WEBAPP-CHECK "
TRACEBACK_LINES = 12
THIS_FILE = os.path.abspath(__file__)


def article(kind):
    """"a WSGI" (whiskey), "an ASGI" (ay-es-gee-eye)."""
    return "an" if kind == "asgi" else "a"


def say(ok, code, message, kind=None, tb=None, **extra):
    sys.stdout.flush()
    line = json.dumps({"ok": ok, "code": code, "message": message, "kind": kind, "traceback": tb or [], **extra})
    sys.__stdout__.write("\n" + MARKER + line + "\n")
    sys.__stdout__.flush()
    os._exit(0)  # no atexit handler or leftover thread of the application may hold the answer


def app_frames(exc):
    """The frames of ``exc``'s traceback that are the application's (or its libraries'): not this
    file's, not importlib's."""
    return [f for f in traceback.extract_tb(exc.__traceback__)
            if os.path.abspath(f.filename) != THIS_FILE and not f.filename.startswith("<frozen ")]


def last_lines(exc):
    """The end of the traceback of ``exc`` through the application's frames only."""
    frames = app_frames(exc)
    lines = ["Traceback (most recent call last):"] if frames else []
    for chunk in [*traceback.format_list(frames), *traceback.format_exception_only(type(exc), exc)]:
        lines += chunk.rstrip().splitlines()
    return lines[-TRACEBACK_LINES:]


def lacking_package(exc, directory):
    """The top-level package an import of the application did not find, when it is no module of the
    application's own (None when it is, or the error is another): ``import flask`` in an interpreter
    without Flask, not ``import mypkg.gone`` where mypkg is the application's."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if os.path.exists(os.path.join(directory, top + ".py")) or os.path.isdir(os.path.join(directory, top)):
        return None
    try:
        found = importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        found = False
    return None if found else top


def importer_of(exc, directory):
    """The file whose import failed, relative to the application's directory when inside it."""
    frames = app_frames(exc)
    if not frames:
        return "the application"
    path = os.path.abspath(frames[-1].filename)
    inside = os.path.commonpath([path, os.path.abspath(directory)]) == os.path.abspath(directory)
    return os.path.relpath(path, directory) if inside else path


def positional_count(fn):
    """How many positional parameters ``fn`` takes, or None when it cannot be told (``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def classify(obj):
    """"asgi", "wsgi" or None (cannot tell), and why."""
    if inspect.isclass(obj):
        return "class", f"a class ({obj.__name__}), not an application object; give the instance"
    if inspect.iscoroutinefunction(obj):
        return "asgi", "an async function"
    call = type(obj).__dict__.get("__call__") or getattr(type(obj), "__call__", None)  # noqa: B004 - the method itself
    if not inspect.isfunction(obj) and not inspect.ismethod(obj) and call is not None:
        if inspect.iscoroutinefunction(call):
            return "asgi", f"an object of class {type(obj).__name__} with an async __call__"
        fn = obj.__call__
    else:
        fn = obj
    count = positional_count(fn)
    if count == 3:
        return "asgi", "a callable of three arguments (scope, receive, send)"
    if count == 2:
        return "wsgi", "a callable of two arguments (environ, start_response)"
    return None, "a callable whose arguments cannot be told"


def main(argv):
    if len(argv) != 4:
        sys.exit("usage: check_app.py DIRECTORY MODULE CALLABLE wsgi|asgi")
    directory, module_name, callable_path, protocol = argv
    os.chdir(directory)
    # "" (the working directory, from -c) becomes the directory itself, as gunicorn's --chdir and
    # granian's --working-dir put it. PYTHONPATH is on sys.path already, as site put it; an
    # isolated interpreter (-I, as this file was once run) ignored it, so it is added by hand then.
    if sys.path and sys.path[0] == "":
        del sys.path[0]
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p] if sys.flags.isolated else []
    sys.path[:0] = [directory, *extra]
    try:
        __import__(module_name)
        obj = sys.modules[module_name]
    except BaseException as exc:  # whatever the import raises (SystemExit too) is the answer
        missing = isinstance(exc, ModuleNotFoundError) and exc.name and (
            module_name == exc.name or module_name.startswith(exc.name + "."))
        if missing:
            say(False, "module-missing", f"there is no module {module_name} in {directory}: check the application "
                                         f"name (a file {module_name.replace('.', '/')}.py, without .py) and the "
                                         "directory", tb=last_lines(exc))
        package = lacking_package(exc, directory)
        if package:
            importer = importer_of(exc, directory)
            say(False, "package-missing", f"{sys.executable} lacks the package {package!r} that {importer} imports",
                tb=last_lines(exc), package=package, importer=importer)
        say(False, "import-failed", f"importing {module_name} failed: {type(exc).__name__}: {exc}",
            tb=last_lines(exc))
    for attr in callable_path.split("."):
        if not hasattr(obj, attr):
            names = sorted(n for n in dir(obj) if not n.startswith("_") and callable(getattr(obj, n, None)))[:12]
            hint = f"; callables there: {', '.join(names)}" if names else ""
            say(False, "callable-missing", f"{module_name} has no {callable_path!r}: check the callable name "
                                           f"(the default is app){hint}")
        obj = getattr(obj, attr)
    target = f"{module_name}:{callable_path}"
    if not callable(obj):
        say(False, "not-callable", f"{target} is a {type(obj).__name__}, not an application: name the WSGI or "
                                   "ASGI application object")
    kind, why = classify(obj)
    if kind == "class":
        say(False, "not-an-app", f"{target} is {why}", kind=None)
    if kind is None:
        say(True, "ok", f"{target} is {why}; taken as {protocol.upper()} as declared", kind=None)
    if kind != protocol:
        engines = "uvicorn or granian" if kind == "asgi" else "gunicorn or granian"
        say(False, "protocol-mismatch",
            f"{target} is declared {protocol.upper()} but is {why}: {article(kind)} {kind.upper()} application; "
            f"choose {kind.upper()} as its protocol type (served by {engines})", kind=kind)
    say(True, "ok", f"{target} is {why}: {article(kind)} {kind.upper()} application", kind=kind)


if __name__ == "__main__":
    main(sys.argv[1:])
