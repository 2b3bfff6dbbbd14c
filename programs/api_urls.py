"""URLs of the programs' JSON API, under /api/programs/ (see programs/api.py)."""

from django.urls import path, re_path

from programs import api

app_name = "programs_api"

urlpatterns = [
    path("", api.program_list, name="list"),
    path("<str:name>/", api.program_detail, name="detail"),
    # With or without the trailing slash: scripts write both, and a POST cannot be redirected.
    re_path(r"^(?P<name>[^/]+)/(?P<action>start|stop|restart)/?$", api.program_action, name="action"),
]
