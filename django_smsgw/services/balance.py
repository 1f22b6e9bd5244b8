"""Balance checks: each one is stored as a ``BalanceSnapshot``, successful or not."""

from __future__ import annotations

import logging

from ..backends import get_backend
from ..exceptions import GatewayError, GatewayRefused
from ..models import BalanceSnapshot
from ..protocol import codes
from .validation import resolve_channel

logger = logging.getLogger("django_smsgw")


def check_balance(channel: str | None = None) -> BalanceSnapshot:
    """Ask the provider for a channel's balance; the stored snapshot.

    A refusal (e.g. 35, the provider's rate limit on balance checks) or a transport failure is
    stored on a snapshot too, then raised as a ``GatewayError`` carrying it as ``snapshot``.
    """
    channel = resolve_channel(channel)
    backend = get_backend()
    snapshot = BalanceSnapshot(channel=channel)
    error: GatewayError | None = None
    try:
        reply = backend.check_balance(channel)
    except GatewayError as exc:
        error = exc
        snapshot.error = exc.reason
        snapshot.raw = {"error": exc.reason, "http_status": exc.http_status}
    else:
        snapshot.global_status = reply.global_code
        snapshot.global_status_text = reply.global_text[:100]
        snapshot.raw = reply.raw
        if reply.global_code == codes.GLOBAL_SUCCESS:
            snapshot.balance = reply.balance
            snapshot.expires_on = reply.expires_on
        else:
            reason = f"the provider refused the {channel} balance check: " + codes.describe(
                reply.global_code, reply.global_text, codes.BALANCE_GLOBAL_TEXTS
            )
            snapshot.error = reason
            error = GatewayRefused(
                reason, code=reply.global_code, text=reply.global_text, response=reply.raw
            )
    snapshot.save()
    if error is not None:
        error.snapshot = snapshot
        logger.warning("balance check failed: %s", error.reason)
        raise error
    return snapshot
