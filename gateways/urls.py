from django.urls import path, re_path

from gateways import views

app_name = "gateways"

urlpatterns = [
    path("", views.gateway_list, name="list"),
    path("new/", views.gateway_create, name="create"),
    path("validate/", views.gateway_validate, name="validate"),
    path("<str:name>/", views.gateway_detail, name="detail"),
    path("<str:name>/activity/", views.gateway_activity, name="activity"),
    path("<str:name>/edit/", views.gateway_edit, name="edit"),
    path("<str:name>/delete/", views.gateway_delete, name="delete"),
    path("<str:name>/row/", views.gateway_row, name="row"),
    path("<str:name>/live/", views.gateway_live, name="live"),
    path("<str:name>/install/", views.gateway_install, name="install"),
    re_path(r"^(?P<name>[^/]+)/(?P<action>start|stop|restart)/$", views.gateway_control, name="control"),
]
