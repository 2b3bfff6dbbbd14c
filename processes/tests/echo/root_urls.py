"""The portal's URLs with the test kind's pages (portal/test_settings.py)."""

from django.urls import include, path

from portal.urls import urlpatterns as portal_urlpatterns

urlpatterns = [path("echoes/", include("processes.tests.echo.urls")), *portal_urlpatterns]
