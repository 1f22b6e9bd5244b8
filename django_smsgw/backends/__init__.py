"""Backends carry requests to the provider, chosen by the ``BACKEND`` setting (like e-mail's)."""

from __future__ import annotations

from django.utils.module_loading import import_string

from .. import conf
from .base import BaseBackend


def get_backend(path: str | None = None, **kwargs) -> BaseBackend:
    """An instance of the configured backend (or of ``path``)."""
    backend_class = import_string(path or conf.get("BACKEND"))
    return backend_class(**kwargs)


__all__ = ["BaseBackend", "get_backend"]
