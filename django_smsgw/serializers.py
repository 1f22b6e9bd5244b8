"""Validation of what the provider POSTs to the callback URL (provider-api.md §2–§3)."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

from .protocol.replies import MalformedReply, parse_callback

# One POST carries a provider's queue of updates; far more than this is not a callback.
MAX_ITEMS = 10_000


def _reject_constant(name: str):
    raise ValueError(f"{name} is not allowed in JSON")


class ProviderJSONParser(BaseParser):
    """JSON whatever the Content-Type: the provider's PHP clients do not all set it.

    Bounded by DATA_UPLOAD_MAX_MEMORY_SIZE, and a body too deeply nested for the JSON decoder
    is a 400 like any other bad body, not a RecursionError.
    """

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 2_621_440
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ParseError(f"the body is larger than {limit} bytes")
        if not raw.strip():
            raise ParseError("the body is empty; expected JSON with 'status_respon'")
        try:
            return json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(f"the body is not valid JSON: {exc}") from exc


class CallbackSerializer(serializers.Serializer):
    """A callback body: ``status_respon`` as one item or a list, keys in any case, codes and
    ids as numbers or numeric strings. The reasons for rejecting a body name the bad item."""

    def to_internal_value(self, data):
        try:
            updates = parse_callback(data)
        except MalformedReply as exc:
            raise serializers.ValidationError({"status_respon": [str(exc)]}) from exc
        if len(updates) > MAX_ITEMS:
            raise serializers.ValidationError(
                {"status_respon": [f"{len(updates)} items; at most {MAX_ITEMS} per POST"]}
            )
        return {"updates": updates}
