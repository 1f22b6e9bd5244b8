"""The delivery callback the provider POSTs to (SPEC §5). Thin: authenticate, validate, call
the service."""

from __future__ import annotations

import hmac
import ipaddress
import logging

from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from . import conf
from .serializers import CallbackSerializer, ProviderJSONParser
from .services.callbacks import receive_reports

logger = logging.getLogger("django_smsgw")


def client_ip(request) -> str:
    """The caller's address: REMOTE_ADDR, unless the project names the header its own proxy
    sets (``CALLBACK_CLIENT_IP_HEADER``). In X-Forwarded-For only the last entry, the one the
    proxy appended, can be trusted: the ones before it are whatever the client sent."""
    header = conf.get("CALLBACK_CLIENT_IP_HEADER")
    if header:
        forwarded = request.META.get(header, "").split(",")[-1].strip()
        if forwarded:
            return forwarded
    return request.META.get("REMOTE_ADDR", "")


def ip_allowed(address: str) -> bool:
    allowed = conf.get("CALLBACK_ALLOWED_IPS")
    if not allowed:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in allowed)


def secret_matches(given: str) -> bool:
    # Compare against every secret, without stopping at a match: constant time in the secret.
    results = [hmac.compare_digest(given.encode(), s.encode()) for s in conf.callback_secrets()]
    return any(results)


class CallbackView(APIView):
    """POST smsgw/callback/<secret>/ — store each report, move messages forward, answer 200."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes: list = []
    parser_classes = [ProviderJSONParser]
    http_method_names = ["post"]

    def post(self, request, secret: str):
        address = client_ip(request)
        if not secret_matches(secret):
            logger.warning("delivery callback with a wrong secret from %s", address)
            raise PermissionDenied("unknown callback secret")
        if not ip_allowed(address):
            logger.warning("delivery callback from %s, not in CALLBACK_ALLOWED_IPS", address)
            raise PermissionDenied(f"{address} may not post delivery reports")
        serializer = CallbackSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            remote = str(ipaddress.ip_address(address))
        except ValueError:
            remote = None
        result = receive_reports(serializer.validated_data["updates"], remote)
        return Response(
            {"received": result.received, "changed": result.changed, "pending": result.pending}
        )
