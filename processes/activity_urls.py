"""The Activity page of every process, at /activity/ (included by portal/urls.py)."""

from django.urls import path

from processes import activity_views

urlpatterns = [
    path("", activity_views.all_activity, name="activity"),
]
