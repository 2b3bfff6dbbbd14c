"""The front: routes HTTP requests on the apps port to each web application's unix socket.

Self-contained and Django-free (any Python 3.11+ runs it). The portal talks to it through one
file, the routes file (``routes.write_routes``; its shape is in ``webapps/front/routes.py``), and
reads back the figures the asyncio front measures (``metrics.py``). Two fronts follow the same file
with the same behaviour:

- ``python -m webapps.front --listen HOST:PORT --routes FILE [--metrics FILE]``: the lean asyncio
  front (``server.py``);
- ``python -m webapps.front.nginx --listen HOST:PORT --routes FILE --dir DIR``: nginx, with its
  config rendered by ``nginx.render_nginx_config`` from the template ``nginx.conf.j2`` (Jinja2,
  the one package the front needs beyond the standard library) and reloaded on every change
  (``nginx.py``).
"""

from .routes import Route, Routes, RoutesError, Static, load_routes, write_routes

__all__ = ["Route", "Routes", "RoutesError", "Static", "load_routes", "write_routes"]
