"""The runtime of a web application, without Django: engines, app check, virtualenvs.

Runs in the portal's worker and keeper and, for the app check and the uvicorn launcher, in the
application's own interpreter. Never imports Django.

* :mod:`webapps.runtime.engines` - :class:`~webapps.runtime.engines.AppRun`, the engine's
  command and environment, ``check_engine`` / ``install_command``, ``build_spec`` (the keeper's Spec).
* :mod:`webapps.runtime.appcheck` - does the module import, is the callable WSGI or ASGI as declared
  (checked by the app's interpreter, in a subprocess with a timeout).
* :mod:`webapps.runtime.venvs` - the application's own virtualenv from its requirements file.
"""
