"""The runtime of a web application, without Django: engines, app check, virtualenvs.

Runs in the portal's worker and keeper and, for the app check and the uvicorn launcher, in the
application's own interpreter. Never imports Django.

API for the Django side::

    from webapps.runtime.engines import AppRun, build_spec, check_engine, install_command, engine_module
    from webapps.runtime.appcheck import check_app
    from webapps.runtime.venvs import ensure_venv, venv_state, current_venv, VenvError

    # 1. The interpreter: the definition's own, or its virtualenv built from a requirements file
    #    (in a task: ``progress`` gets each line of pip's output for the page and Activity).
    venv = ensure_venv(VAR / "venvs" / str(pk), requirements_path, engine, progress=say)  # VenvError
    python = str(venv.python)              # venv.built: False when it was up to date
    venv_state(root, requirements_path, engine)   # "missing" | "stale" | "current" (no build)

    # 2. Checks before a save or a start (None or a message that says how to fix it).
    failure = check_engine(python, engine)  # CheckFailure("engine-missing", ..., fix=..., fix_argv=[...])
    result = check_app(python, directory, module, callable_name, protocol, env=child_env, timeout=20)
    result.ok, result.code, result.message, result.kind, result.traceback

    # 3. The keeper's Spec: engine command, SCRIPT_NAME, the socket the keeper binds (0600), probe, debug reload.
    app = AppRun(mount="/flask", directory=..., module="app", callable="app", protocol="wsgi",
                 engine="gunicorn", workers=1, threads=4, debug=False, python=python,
                 env={...}, secret_env=[...], socket=str(run_dir / "app.sock"), log_file=...)
    app.problems()                         # [] or messages (engine/protocol mismatch, names, sizes)
    spec = build_spec(app, name="flask", log_roots=[...], restart_policy="on-failure")
    keeper.launch(spec, run_dir)

* :mod:`webapps.runtime.engines` - the command line and environment of each engine, the Spec.
* :mod:`webapps.runtime.appcheck` (+ ``check_app.py``, run by the app's interpreter) - does the
  module import, is the callable WSGI or ASGI as declared.
* :mod:`webapps.runtime.venvs` - the application's own virtualenv from its requirements file.
* ``serve/portal_uvicorn.py`` - the launcher uvicorn runs under (socket mode, root_path).
* ``serve_granian/portal_granian.py`` - the WSGI application granian serves: the definition's, its
  small answers in one piece.
"""
