from django.apps import AppConfig


class SmsgwConfig(AppConfig):
    name = "django_smsgw"
    label = "django_smsgw"
    verbose_name = "SMS gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
