from django.urls import path

from .views import CallbackView

app_name = "smsgw"

urlpatterns = [
    path("callback/<str:secret>/", CallbackView.as_view(), name="callback"),
]
