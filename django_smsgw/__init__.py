"""django-smsgw: send SMS from Django through the Indonesian SMS gateway JSON API.

``send_sms``, ``send_bulk`` and ``check_balance`` are imported lazily so that importing the
package (for example from settings) does not load models before Django is ready.
"""

import logging

# A library logs; the project decides where to (without LOGGING, nothing reaches stderr).
logging.getLogger("django_smsgw").addHandler(logging.NullHandler())

__version__ = "0.1.0"
__all__ = ["send_sms", "send_bulk", "check_balance"]


def __getattr__(name: str):
    if name in __all__:
        from . import services

        return getattr(services, name)
    raise AttributeError(f"module 'django_smsgw' has no attribute {name!r}")
