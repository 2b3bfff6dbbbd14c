"""The Activity page of every gateway, at /activity/ (included by portal/urls.py)."""

from django.urls import path

from gateways import activity_views

urlpatterns = [
    path("", activity_views.all_activity, name="activity"),
]
