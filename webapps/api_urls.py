"""URLs of the web applications' JSON API, under /api/webapps/ (see webapps/api.py)."""

from django.urls import path, re_path

from webapps import api

app_name = "webapps_api"

urlpatterns = [
    path("", api.webapp_list, name="list"),
    # The rest of the URL: the application's path, and for a POST its action (with or without a slash).
    re_path(r"^(?P<path>.+)$", api.webapp_resource, name="resource"),
]
