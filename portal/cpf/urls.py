from django.urls import path

from portal.cpf import views

app_name = "cpf"

urlpatterns = [
    path("merge/", views.merge_page, name="merge"),
    path("export/", views.export_download, name="export"),
]
