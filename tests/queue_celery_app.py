"""The Celery app of the queue tests' worker process, set up the way a project sets up its own
(``celery -A tests.queue_celery_app worker``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.queue_settings")

app = Celery("smsgw_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
