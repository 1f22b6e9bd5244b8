"""A simulator of the SMS gateway provider (provider-api.md), for the demo and the tests.

Runs without Django: `python -m django_smsgw.simulator`.
"""

from .server import Simulator

__all__ = ["Simulator"]
