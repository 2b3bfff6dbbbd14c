from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from portal import api, profile_views, views
from portal.cpf import views as cpf_views

admin.site.site_header = "Gateway Portal administration"
# No sidebar of every model beside each page: the home page lists the few there are, and a
# changelist needs the width (a run has twelve columns, which a laptop cannot show beside it).
admin.site.enable_nav_sidebar = False
admin.site.site_title = "Gateway Portal"

urlpatterns = [
    # Browsers ask for /favicon.ico on every page that names no icon (the admin's too).
    path("favicon.ico", views.favicon),
    path("", views.dashboard, name="dashboard"),
    path("health/", views.health_panel, name="health"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("gateways/", include("gateways.urls")),
    path("webapps/", include("webapps.urls")),
    path("programs/", include("programs.urls")),
    path("activity/", include("processes.activity_urls")),
    path("profile/", profile_views.profile, name="profile"),
    path("cpf/", include("portal.cpf.urls")),
    re_path(r"^api/cpf/merge/?$", cpf_views.api_merge, name="api-cpf-merge"),
    path("api/webapps/", include("webapps.api_urls")),
    path("api/programs/", include("programs.api_urls")),
    path("api/gateways/", include("gateways.api_urls")),
    # Any other path under /api/ answers in JSON too, not with the HTML 404 page.
    re_path(r"^api/(?P<path>.*)$", api.not_found),
    # Runs and activity of every kind of process moved from the gateways app's admin to processes'.
    re_path(r"^admin/gateways/(?P<model>run|activity)/(?P<rest>.*)$",
            RedirectView.as_view(url="/admin/processes/%(model)s/%(rest)s", query_string=True)),
    path("admin/", admin.site.urls),
]
