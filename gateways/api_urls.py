"""URLs of the JSON API, under /api/ (see gateways/api.py)."""

from django.urls import path, re_path

from gateways import api

app_name = "api"

urlpatterns = [
    path("gateways/", api.gateway_list, name="gateways"),
    path("gateways/<str:name>/", api.gateway_detail, name="gateway"),
    # With or without the trailing slash: scripts write both, and a POST cannot be redirected.
    re_path(r"^gateways/(?P<name>[^/]+)/(?P<action>start|stop|restart)/?$", api.gateway_action, name="action"),
]
