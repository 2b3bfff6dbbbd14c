"""Pages of web applications: the ones every kind has (processes/definition_views.py), and the
front's figures. An application's path may have several segments (/shop/api), so it comes last
in the detail's URL and the pages of one application follow it after a "-" segment, which a
path cannot have (as GitLab's /-/ does)."""

from django.urls import path

from processes.definition_views import definition_urls
from webapps import views

app_name = "webapps"

urlpatterns = definition_urls(
    views.PAGES, name="<path:name>/", pages="-/",
    extra=[path("<path:name>/-/figures/", views.webapp_figures, name="figures")],
)
