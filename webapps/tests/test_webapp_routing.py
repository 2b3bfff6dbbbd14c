"""The front's routes come from the definitions and their states, in the routes file's shape."""

from __future__ import annotations

import pytest

from webapps.front.routes import routes_from_json
from webapps.routing import current_routes
from webapps.tests.webapp_factories import app_dir, make_webapp

pytestmark = pytest.mark.django_db


def test_every_application_is_a_route_the_front_accepts(tmp_path):
    folder = app_dir(tmp_path)
    (folder / "static").mkdir()
    make_webapp(folder, name="/flask", static_files={"/static": str(folder / "static")})
    make_webapp(folder, name="/shop/api", protocol="asgi", state="running", pid=1)
    make_webapp(folder, name="/down", state="stopping", last_error="")
    routes = routes_from_json({"version": 1, "apps": current_routes(), "strip_cookies": ["portal_sessionid"]})
    by_path = {r.path: r for r in routes.apps}
    assert by_path["/flask"].state == "stopped"
    assert [(s.url, s.dir) for s in by_path["/flask"].static] == [("/flask/static", str(folder / "static"))]
    assert (by_path["/shop/api"].state, by_path["/shop/api"].protocol) == ("running", "asgi")
    assert by_path["/shop/api"].socket.endswith("/app.sock")
    assert (by_path["/down"].state, by_path["/down"].reason) == ("stopping", "the application is being stopped")
    assert routes.match("/shop/api/x").path == "/shop/api"
