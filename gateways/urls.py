from django.urls import path

from gateways import views

app_name = "gateways"

urlpatterns = [
    path("", views.gateway_list, name="list"),
    path("new/", views.gateway_create, name="create"),
    path("validate/", views.gateway_validate, name="validate"),
    path("<str:name>/", views.gateway_detail, name="detail"),
    path("<str:name>/edit/", views.gateway_edit, name="edit"),
    path("<str:name>/delete/", views.gateway_delete, name="delete"),
]
