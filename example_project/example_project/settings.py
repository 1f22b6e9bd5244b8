"""The example project's settings; every deployment-specific value comes from the environment
(or example_project/.env — see .env.example for each variable)."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="example-project-not-secret")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_smsgw",
    "demo",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "example_project.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
WSGI_APPLICATION = "example_project.wsgi.application"
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "Asia/Jakarta"
STATIC_URL = "static/"
LOGIN_URL = "admin:login"

# The defaults point at the built-in simulator as `make demo` runs it (python -m
# django_smsgw.simulator --port 8787 --api-key demo-api-key); a real deployment sets them all.
SMSGW = {
    "API_KEY": env.str("SMSGW_API_KEY", default="demo-api-key"),
    "BASE_URL": env.str("SMSGW_BASE_URL", default="http://127.0.0.1:8787"),
    "BACKEND": env.str("SMSGW_BACKEND", default="django_smsgw.backends.http.HttpBackend"),
    "DEFAULT_CHANNEL": env.str("SMSGW_DEFAULT_CHANNEL", default="reguler"),
    "CALLBACK_URL": env.str(
        "SMSGW_CALLBACK_URL", default="http://127.0.0.1:8000/smsgw/callback/demo-secret/"
    ),
    "CALLBACK_SECRET": env.list("SMSGW_CALLBACK_SECRET", default=["demo-secret"]),
    "TIMEOUT": env.float("SMSGW_TIMEOUT", default=10),
    "QUEUE": env.bool("SMSGW_QUEUE", default=False),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_smsgw": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")}},
}
