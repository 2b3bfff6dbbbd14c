from blog import views
from django.contrib import admin
from django.urls import path

urlpatterns = [
    path("", views.index, name="index"),
    path("posts", views.posts, name="posts"),
    path("posts/<int:item_id>", views.post, name="post"),
    path("comments", views.comments, name="comments"),
    path("comments/<int:item_id>", views.comment, name="comment"),
    path("interop", views.interop, name="interop"),
    path("admin/", admin.site.urls),
]

handler400 = "blog.views.bad_request"
handler404 = "blog.views.not_found"
handler500 = "blog.views.server_error"
