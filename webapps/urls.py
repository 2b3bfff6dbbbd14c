"""Pages of web applications. An application's path may have several segments
(/shop/api), so it comes last in the detail's URL and the pages of one application
follow it after a "-" segment, which a path cannot have (as GitLab's /-/ does)."""

from django.urls import path, re_path

from webapps import views

app_name = "webapps"

urlpatterns = [
    path("", views.webapp_list, name="list"),
    path("-/new/", views.webapp_create, name="create"),
    path("-/validate/", views.webapp_validate, name="validate"),
    path("<path:name>/-/edit/", views.webapp_edit, name="edit"),
    path("<path:name>/-/delete/", views.webapp_delete, name="delete"),
    path("<path:name>/-/live/", views.webapp_live, name="live"),
    path("<path:name>/-/figures/", views.webapp_figures, name="figures"),
    path("<path:name>/-/row/", views.webapp_row, name="row"),
    path("<path:name>/-/install/", views.webapp_install, name="install"),
    path("<path:name>/-/activity/", views.webapp_activity, name="activity"),
    re_path(r"^(?P<name>.+)/-/(?P<action>start|stop|restart)/$", views.webapp_control, name="control"),
    path("<path:name>/", views.webapp_detail, name="detail"),
]
