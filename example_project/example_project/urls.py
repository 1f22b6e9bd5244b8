from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("smsgw/", include("django_smsgw.urls")),
    path("", include("demo.urls")),
]
