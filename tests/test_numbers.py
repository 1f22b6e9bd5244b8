"""Phone numbers (SPEC §3): phonenumbers decides, whatever form the number is written in."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_smsgw.exceptions import InvalidNumber
from django_smsgw.services.validation import normalize_number


def by_phonenumbers(text: str) -> str | None:
    """What phonenumbers.parse() alone says: the E.164 of a valid Indonesian mobile, or None."""
    try:
        parsed = phonenumbers.parse(text, "ID")
    except phonenumbers.NumberParseException:
        return None
    mobile = phonenumbers.number_type(parsed) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )
    if parsed.country_code != 62 or not phonenumbers.is_valid_number(parsed) or not mobile:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def ours(text: str) -> str | None:
    try:
        return normalize_number(text)
    except InvalidNumber:
        return None


canonical = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["0", "62", "+62"]),
    st.text("0123456789", min_size=6, max_size=14).map(lambda digits: "8" + digits),
)


@settings(max_examples=500, deadline=None)
@given(canonical)
def test_the_digits_only_shortcut_agrees_with_phonenumbers(text):
    assert ours(text) == by_phonenumbers(text)


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789+-() ", max_size=18))
def test_any_typed_number_agrees_with_phonenumbers(text):
    assert ours(text) == (by_phonenumbers(text) if text.strip() else None)


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("081234567890", "+6281234567890"),
        ("6281234567890", "+6281234567890"),
        ("+6281234567890", "+6281234567890"),
        ("+62 812-3456-7890", "+6281234567890"),
        ("0857 1234 5678", "+6285712345678"),
        (6281234567890, "+6281234567890"),
    ],
)
def test_written_forms(typed, e164):
    assert normalize_number(typed) == e164


@pytest.mark.parametrize(
    ("typed", "code"),
    [
        ("0812", "invalid"),
        ("02134567890", "not_mobile"),
        ("+12025550100", "not_indonesian"),
        ("hello", "unparseable"),
        ("", "empty"),
    ],
)
def test_each_refusal_says_why(typed, code):
    with pytest.raises(InvalidNumber) as caught:
        normalize_number(typed)
    assert caught.value.code == code
