"""Settings for the processes that the queue tests and the queue benchmark start: workers, a
Celery worker, the driver. Another process cannot see a test's ``settings`` fixture, so what
differs comes from the environment (DATABASE_URL is read by tests.settings)."""

from tests.settings import *  # noqa: F403
from tests.settings import SMSGW, env

SMSGW = {
    **SMSGW,
    "API_KEY": env.str("SMSGW_API_KEY", default="test-key"),
    "BASE_URL": env.str("SMSGW_BASE_URL", default="http://127.0.0.1:9"),
    "BACKEND": "django_smsgw.backends.http.HttpBackend",
    "TIMEOUT": (1, env.float("SMSGW_TEST_READ_TIMEOUT", default=10)),
    "CONNECT_RETRIES": 0,
    "QUEUE_LEASE": env.float("SMSGW_TEST_QUEUE_LEASE", default=60),
    "CELERY": env.bool("SMSGW_TEST_CELERY", default=False),
}
# The crash tests use a lease of seconds, shorter than a request may take: expected there.
SILENCED_SYSTEM_CHECKS = ["smsgw.W020"]

CELERY_BROKER_URL = env.str("SMSGW_TEST_BROKER", default="redis://127.0.0.1:6379/11")
CELERY_TASK_DEFAULT_QUEUE = env.str("SMSGW_TEST_CELERY_QUEUE", default="smsgw-tests")
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
