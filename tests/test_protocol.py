"""The provider protocol layer (django_smsgw.protocol): code tables, bodies, tolerant replies.

Read against /shared/provider-api.md (the wire format and its §3 quirks), the captured bodies in
/shared/vectors/ and SPEC §4 (which status each provider code leads to). Plain Python: no DB.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from django_smsgw.protocol import codes
from django_smsgw.protocol.payloads import (
    OutgoingPacket,
    balance_body,
    endpoint,
    send_body,
    sending_datetime,
)
from django_smsgw.protocol.replies import (
    BalanceReply,
    DeliveryUpdate,
    MalformedReply,
    PacketResult,
    SendReply,
    loads,
    parse_balance_reply,
    parse_callback,
    parse_send_reply,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
VECTORS = SHARED / "vectors"
PROVIDER_API = SHARED / "provider-api.md"
UTC = dt.UTC
JAKARTA = ZoneInfo("Asia/Jakarta")


# --- helpers -----------------------------------------------------------------------------------


def packet(**fields: Any) -> dict[str, Any]:
    """One reply packet's fields (inside the ``packet`` wrapper); an accepted packet by default."""
    return {
        "number": "6281234567890",
        "sendingid": 1287265,
        "sendingstatus": 10,
        "sendingstatustext": "Success",
        "price": 320,
        **fields,
    }


def send_reply(datapacket: Any, globalstatus: Any = 10) -> dict[str, Any]:
    return {
        "sending_respon": [
            {"globalstatus": globalstatus, "globalstatustext": "Success", "datapacket": datapacket}
        ]
    }


def wrapped(*packets: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"packet": p} for p in packets]


def balance_reply(**fields: Any) -> dict[str, Any]:
    body = {
        "globalstatus": 10,
        "globalstatustext": "Success",
        "Balance": 880,
        "Expired": "2027-09-18",
        **fields,
    }
    return {"balance_respon": [body]}


def delivery(**fields: Any) -> dict[str, Any]:
    return {
        "sendingid": 1287265,
        "number": "6281234567890",
        "deliverystatus": "3",
        "deliverystatustext": "Delivered Success",
        **fields,
    }


def callback(*items: Any) -> dict[str, Any]:
    return {"status_respon": list(items)}


def assert_identical(actual: Any, expected: Any) -> None:
    """Equal, and every field of the same type: ``Decimal(880) == 880`` would hide an int."""
    assert actual == expected
    assert_same_types(actual, expected)


def assert_same_types(actual: Any, expected: Any) -> None:
    assert type(actual) is type(expected), (actual, expected)
    if dataclasses.is_dataclass(expected):
        for field in dataclasses.fields(expected):
            if field.name != "raw":
                assert_same_types(getattr(actual, field.name), getattr(expected, field.name))
    elif isinstance(expected, list):
        for actual_item, expected_item in zip(actual, expected, strict=True):
            assert_same_types(actual_item, expected_item)


def doc_table(marker: str) -> dict[int, str]:
    """The ``| code | text |`` rows of the first table after ``marker`` in provider-api.md."""
    lines = PROVIDER_API.read_text(encoding="utf-8").splitlines()
    start = next(index for index, line in enumerate(lines) if marker in line)
    rows: dict[int, str] = {}
    for line in lines[start + 1 :]:
        row = re.match(r"\|\s*(\d+)\s*\|\s*([^|]+?)\s*\|", line)
        if row:
            rows[int(row[1])] = row[2]
        elif rows and not line.startswith("|"):
            break
    return rows


def doc_balance_codes() -> dict[int, str]:
    """The balance codes, which the document lists in prose rather than in a table."""
    text = PROVIDER_API.read_text(encoding="utf-8")
    prose = text.split("Balance global codes:")[1].split("\n\n")[0]
    prose = re.sub(r"\s*\([^)]*\)", "", " ".join(prose.split())).rstrip(".")
    pairs = (item.strip().split(" ", 1) for item in prose.split(","))
    return {int(code): name for code, name in pairs}


# --- the captured vectors ----------------------------------------------------------------------


def first_packet(data: dict[str, Any]) -> dict[str, Any]:
    return data["sending_respon"][0]["datapacket"][0]


EXPECTED_VECTORS = {
    "balance_success.json": lambda data: BalanceReply(
        global_code=10,
        global_text="Success",
        balance=Decimal(880),
        expires_on=dt.date(2017, 9, 18),
        raw=data,
    ),
    "send_success_otp.json": lambda data: SendReply(
        global_code=10,
        global_text="Success",
        packets=[
            PacketResult(
                number="6282297335657",
                sending_id=1287265,
                code=10,
                text="success",
                price=Decimal(320),
                raw=first_packet(data),
            )
        ],
        raw=data,
    ),
    "send_invalid_number.json": lambda data: SendReply(
        global_code=10,
        global_text="Success",
        packets=[
            PacketResult(
                number="1",
                sending_id=None,
                code=60,
                text="Invalid Number",
                price=Decimal(0),
                raw=first_packet(data),
            )
        ],
        raw=data,
    ),
    "callback_two.json": lambda data: [
        DeliveryUpdate(
            sending_id=1287265,
            number="6282297335657",
            code=3,
            text="Delivered Success",
            raw=data["status_respon"][0],
        ),
        DeliveryUpdate(
            sending_id=1287266,
            number="6285712345678",
            code=4,
            text="Delivered Error",
            raw=data["status_respon"][1],
        ),
    ],
}
PARSER_BY_PREFIX = {
    "send_": parse_send_reply,
    "balance_": parse_balance_reply,
    "callback_": parse_callback,
}
VECTOR_FILES = sorted(VECTORS.glob("*.json"))


def parser_for(path: Path):
    return next(parse for prefix, parse in PARSER_BY_PREFIX.items() if path.name.startswith(prefix))


def test_every_vector_file_has_an_expected_parse():
    assert {path.name for path in VECTOR_FILES} == set(EXPECTED_VECTORS)


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda path: path.stem)
def test_vector_parses_to_the_expected_typed_objects(path):
    data = loads(path.read_bytes())

    parsed = parser_for(path)(data)

    assert_identical(parsed, EXPECTED_VECTORS[path.name](data))


def test_invalid_number_vector_maps_to_rejected():
    parsed = parse_send_reply(loads((VECTORS / "send_invalid_number.json").read_bytes()))

    assert codes.status_for_packet(parsed.packets[0].code) == "rejected"


def test_callback_vector_maps_to_delivered_then_undelivered():
    updates = parse_callback(loads((VECTORS / "callback_two.json").read_bytes()))

    assert [codes.status_for_delivery(update.code) for update in updates] == [
        "delivered",
        "undelivered",
    ]


# --- §3 quirks: keys in any case ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["Balance", "balance", "BALANCE", "bAlAnCe"])
def test_balance_key_is_read_in_any_case(key):
    reply = parse_balance_reply(
        {"balance_respon": [{"globalstatus": 10, key: 880, "Expired": "2027-09-18"}]}
    )

    assert_identical(reply.balance, Decimal(880))


@pytest.mark.parametrize("key", ["Expired", "expired", "EXPIRED"])
def test_expired_key_is_read_in_any_case(key):
    reply = parse_balance_reply(
        {"balance_respon": [{"globalstatus": 10, "Balance": 1, key: "2027-09-18"}]}
    )

    assert reply.expires_on == dt.date(2027, 9, 18)


@pytest.mark.parametrize("key", ["globalstatus", "GlobalStatus", "GLOBALSTATUS", "globalStatus"])
def test_send_globalstatus_key_is_read_in_any_case(key):
    reply = parse_send_reply(
        {"sending_respon": [{key: 30, "GlobalStatusText": "ApiKey not register"}]}
    )

    assert (reply.global_code, reply.global_text) == (30, "ApiKey not register")


@pytest.mark.parametrize("key", ["globalstatus", "GlobalStatus", "GLOBALSTATUS"])
def test_balance_globalstatus_key_is_read_in_any_case(key):
    reply = parse_balance_reply({"balance_respon": [{key: 35, "GlobalStatusText": "Limit"}]})

    assert (reply.global_code, reply.global_text) == (35, "Limit")


@pytest.mark.parametrize("key", ["sending_respon", "Sending_Respon", "SENDING_RESPON"])
def test_sending_respon_key_is_read_in_any_case(key):
    assert parse_send_reply({key: [{"globalstatus": 40}]}).global_code == 40


@pytest.mark.parametrize("key", ["balance_respon", "Balance_Respon", "BALANCE_RESPON"])
def test_balance_respon_key_is_read_in_any_case(key):
    assert parse_balance_reply({key: [{"globalstatus": 35}]}).global_code == 35


@pytest.mark.parametrize("key", ["status_respon", "Status_Respon", "STATUS_RESPON"])
def test_status_respon_key_is_read_in_any_case(key):
    assert [update.code for update in parse_callback({key: [delivery()]})] == [3]


def test_packet_keys_are_read_in_any_case():
    entry = {
        "Packet": {
            "Number": "6281234567890",
            "SendingID": 1287265,
            "SendingStatus": 10,
            "SendingStatusText": "Success",
            "PRICE": 320,
        }
    }

    reply = parse_send_reply({"sending_respon": [{"globalstatus": 10, "DataPacket": [entry]}]})

    assert_identical(
        reply.packets,
        [PacketResult("6281234567890", 1287265, 10, "Success", Decimal(320), raw=entry)],
    )


def test_delivery_update_keys_are_read_in_any_case():
    item = {
        "SendingID": "1287265",
        "Number": "6281234567890",
        "DeliveryStatus": "4",
        "DELIVERYSTATUSTEXT": "Delivered Error",
    }

    assert_identical(
        parse_callback({"status_respon": [item]}),
        [DeliveryUpdate(1287265, "6281234567890", 4, "Delivered Error", raw=item)],
    )


# --- §3 quirks: numbers as int or numeric strings ----------------------------------------------

CODE_FORMS = [10, "10", " 10 ", "10.0", 10.0, "\t10\n"]


@pytest.mark.parametrize("value", CODE_FORMS, ids=repr)
def test_send_globalstatus_is_an_int_from_int_or_numeric_string(value):
    assert_identical(parse_send_reply(send_reply([], globalstatus=value)).global_code, 10)


@pytest.mark.parametrize("value", CODE_FORMS, ids=repr)
def test_balance_globalstatus_is_an_int_from_int_or_numeric_string(value):
    assert_identical(parse_balance_reply(balance_reply(globalstatus=value)).global_code, 10)


@pytest.mark.parametrize("value", CODE_FORMS, ids=repr)
def test_sendingstatus_is_an_int_from_int_or_numeric_string(value):
    reply = parse_send_reply(send_reply(wrapped(packet(sendingstatus=value))))

    assert_identical(reply.packets[0].code, 10)


@pytest.mark.parametrize(
    "value", [1287265, "1287265", " 1287265 ", "1287265.0", 1287265.0], ids=repr
)
def test_sendingid_is_an_int_from_int_or_numeric_string(value):
    reply = parse_send_reply(send_reply(wrapped(packet(sendingid=value))))

    assert_identical(reply.packets[0].sending_id, 1287265)


@pytest.mark.parametrize("value", [0, "0", " 0 ", "0.0", None])
def test_refused_packet_sendingid_zero_becomes_none(value):
    reply = parse_send_reply(send_reply(wrapped(packet(sendingid=value, sendingstatus=60))))

    assert reply.packets[0].sending_id is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (320, Decimal(320)),
        ("320", Decimal(320)),
        (" 320 ", Decimal(320)),
        ("320.0", Decimal("320.0")),
        (320.5, Decimal("320.5")),
        (0, Decimal(0)),
    ],
    ids=repr,
)
def test_price_is_a_decimal_from_number_or_numeric_string(value, expected):
    reply = parse_send_reply(send_reply(wrapped(packet(price=value))))

    assert_identical(reply.packets[0].price, expected)


@pytest.mark.parametrize("value", [None, ""])
def test_missing_or_empty_price_is_none(value):
    assert parse_send_reply(send_reply(wrapped(packet(price=value)))).packets[0].price is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (880, Decimal(880)),
        ("880", Decimal(880)),
        (" 880 ", Decimal(880)),
        ("880.0", Decimal("880.0")),
        # Through str(), so a float keeps its printed digits, not its binary approximation.
        (1234.56, Decimal("1234.56")),
        ("1234.56", Decimal("1234.56")),
    ],
    ids=repr,
)
def test_balance_is_a_decimal_from_number_or_numeric_string(value, expected):
    assert_identical(parse_balance_reply(balance_reply(Balance=value)).balance, expected)


@pytest.mark.parametrize("value", [3, "3", " 3 ", "3.0", 3.0], ids=repr)
def test_deliverystatus_is_an_int_from_int_or_numeric_string(value):
    assert_identical(parse_callback(callback(delivery(deliverystatus=value)))[0].code, 3)


@pytest.mark.parametrize("value", [1287265, "1287265", " 1287265 ", "1287265.0"], ids=repr)
def test_callback_sendingid_is_an_int_from_int_or_numeric_string(value):
    assert_identical(parse_callback(callback(delivery(sendingid=value)))[0].sending_id, 1287265)


@pytest.mark.parametrize("value", ["2027-09-18", " 2027-09-18 ", "2027-09-18 23:59:59"])
def test_expired_is_a_date(value):
    assert_identical(
        parse_balance_reply(balance_reply(Expired=value)).expires_on, dt.date(2027, 9, 18)
    )


@pytest.mark.parametrize("value", [None, "", "0000-00-00"])
def test_missing_or_zero_expired_is_none(value):
    assert parse_balance_reply(balance_reply(Expired=value)).expires_on is None


def test_balance_error_reply_has_no_balance_nor_expiry():
    reply = parse_balance_reply(
        {"balance_respon": [{"globalstatus": 35, "globalstatustext": "Check Balance Limit"}]}
    )

    assert (reply.global_code, reply.global_text, reply.balance, reply.expires_on) == (
        35,
        "Check Balance Limit",
        None,
        None,
    )


# --- §3 quirks: a list of one object, or a bare object -----------------------------------------


def test_sending_respon_as_bare_object_parses_like_a_list_of_one():
    body = {"globalstatus": 10, "globalstatustext": "Success", "datapacket": wrapped(packet())}

    bare = parse_send_reply({"sending_respon": body})
    listed = parse_send_reply({"sending_respon": [body]})

    assert (bare.global_code, bare.global_text, bare.packets) == (10, "Success", listed.packets)
    assert bare.packets[0].sending_id == 1287265


def test_balance_respon_as_bare_object_parses_like_a_list_of_one():
    body = {"globalstatus": 10, "Balance": "880", "Expired": "2027-09-18"}

    bare = parse_balance_reply({"balance_respon": body})

    assert (bare.global_code, bare.balance, bare.expires_on) == (
        10,
        Decimal(880),
        dt.date(2027, 9, 18),
    )


def test_status_respon_as_bare_object_is_one_update():
    assert [update.sending_id for update in parse_callback({"status_respon": delivery()})] == [
        1287265
    ]


# --- §3 quirks: datapacket missing, empty, null, bare, unwrapped -------------------------------


def test_missing_datapacket_means_no_packets():
    reply = parse_send_reply({"sending_respon": [{"globalstatus": 30, "globalstatustext": "x"}]})

    assert (reply.global_code, reply.packets) == (30, [])


@pytest.mark.parametrize("value", [[], None, {}], ids=repr)
def test_empty_or_null_datapacket_means_no_packets(value):
    assert parse_send_reply(send_reply(value, globalstatus=30)).packets == []


def test_datapacket_as_a_bare_wrapped_object_is_one_packet():
    reply = parse_send_reply(send_reply({"packet": packet()}))

    assert [(p.sending_id, p.code) for p in reply.packets] == [(1287265, 10)]


def test_datapacket_as_a_bare_unwrapped_object_is_one_packet():
    reply = parse_send_reply(send_reply(packet()))

    assert [(p.sending_id, p.code) for p in reply.packets] == [(1287265, 10)]


def test_datapacket_entries_without_packet_wrapper_are_read():
    reply = parse_send_reply(send_reply([packet(), packet(sendingid=0, sendingstatus=70)]))

    assert [(p.sending_id, p.code) for p in reply.packets] == [(1287265, 10), (None, 70)]


def test_wrapped_and_unwrapped_entries_may_be_mixed():
    reply = parse_send_reply(
        send_reply(
            [{"packet": packet(sendingid=1)}, packet(sendingid=2), {"packet": packet(sendingid=3)}]
        )
    )

    assert [p.sending_id for p in reply.packets] == [1, 2, 3]


def test_packets_keep_the_reply_order():
    reply = parse_send_reply(
        send_reply(
            wrapped(
                packet(number="6281234567890", sendingid=1287265),
                packet(number="1", sendingid=0, sendingstatus=60, price=0),
            )
        )
    )

    assert [(p.number, p.sending_id, p.code, p.price) for p in reply.packets] == [
        ("6281234567890", 1287265, 10, Decimal(320)),
        ("1", None, 60, Decimal(0)),
    ]


def test_packet_keeps_its_raw_entry():
    entry = {"packet": packet()}

    assert parse_send_reply(send_reply([entry])).packets[0].raw == entry


# --- §3 quirks: decide on codes, never on texts ------------------------------------------------


@pytest.mark.parametrize("text", ["Success", "success", "SUCCESS", "Invalid Number", ""])
def test_packet_status_follows_the_code_whatever_the_text(text):
    result = parse_send_reply(send_reply(wrapped(packet(sendingstatustext=text)))).packets[0]

    assert (result.text, codes.status_for_packet(result.code)) == (text, "accepted")


@pytest.mark.parametrize("text", ["success", "SUCCESS", "Success"])
def test_global_success_is_recognised_by_code_whatever_the_text(text):
    reply = parse_send_reply({"sending_respon": [{"globalstatus": "10", "globalstatustext": text}]})

    assert (reply.global_code == codes.GLOBAL_SUCCESS, reply.global_text) == (True, text)


@pytest.mark.parametrize("text", ["Delivered Success", "delivered success", "DELIVERED ERROR"])
def test_delivery_status_follows_the_code_whatever_the_text(text):
    update = parse_callback(callback(delivery(deliverystatus="3", deliverystatustext=text)))[0]

    assert (update.text, codes.status_for_delivery(update.code)) == (text, "delivered")


# --- §3 quirks: unknown codes ------------------------------------------------------------------

UNKNOWN_CODES = [25, 0, 11, 99, -1]


@pytest.mark.parametrize("code", UNKNOWN_CODES)
def test_unknown_global_code_is_failed(code):
    assert codes.status_for_global(code) == "failed"


@pytest.mark.parametrize("code", UNKNOWN_CODES)
def test_unknown_packet_code_is_unknown(code):
    assert codes.status_for_packet(code) == "unknown"


@pytest.mark.parametrize("code", UNKNOWN_CODES)
def test_unknown_delivery_code_is_none(code):
    assert codes.status_for_delivery(code) is None


@pytest.mark.parametrize(
    "table",
    [codes.GLOBAL_TEXTS, codes.PACKET_TEXTS, codes.DELIVERY_TEXTS],
    ids=["global", "packet", "delivery"],
)
def test_describe_unknown_code_says_so_with_the_provider_text(table):
    assert (
        codes.describe(25, "Error Check Balance", table) == "unknown code 25 (Error Check Balance)"
    )


@pytest.mark.parametrize("text", [None, ""])
def test_describe_unknown_code_without_text(text):
    assert codes.describe(25, text, codes.PACKET_TEXTS) == "unknown code 25"


def test_describe_missing_code_is_unknown():
    assert codes.describe(None, "weird", codes.PACKET_TEXTS) == "unknown code None (weird)"


def test_describe_known_code_prefers_the_provider_text():
    assert codes.describe(60, "invalid number", codes.PACKET_TEXTS) == "60 invalid number"


def test_describe_known_code_without_text_uses_the_document_text():
    assert codes.describe(60, None, codes.PACKET_TEXTS) == "60 Invalid Number"


def test_unknown_codes_in_replies_parse_without_error():
    send = parse_send_reply(send_reply(wrapped(packet(sendingstatus="25")), globalstatus="25"))
    balance = parse_balance_reply(
        {"balance_respon": [{"globalstatus": 25, "globalstatustext": "Error"}]}
    )
    updates = parse_callback(callback(delivery(deliverystatus="25")))

    assert (send.global_code, send.packets[0].code, balance.global_code, updates[0].code) == (
        25,
        25,
        25,
        25,
    )


# --- every documented code → SPEC §4 status; texts as documented -------------------------------


@pytest.mark.parametrize("code", [20, 30, 40, 50, 55])
def test_global_error_code_is_rejected(code):
    assert codes.status_for_global(code) == "rejected"


@pytest.mark.parametrize(
    ("code", "status"),
    [(10, "accepted"), (60, "rejected"), (70, "rejected"), (80, "rejected"), (90, "failed")],
)
def test_packet_code_maps_to_spec_status(code, status):
    assert codes.status_for_packet(code) == status


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (1, "scheduled"),
        (2, "sent"),
        (3, "delivered"),
        (10, "delivered"),
        (4, "undelivered"),
        (7, "undelivered"),
        (9, "rejected"),
        (5, "failed"),
        (6, "failed"),
        (8, "failed"),
    ],
)
def test_delivery_code_maps_to_spec_status(code, status):
    assert codes.status_for_delivery(code) == status


@pytest.mark.parametrize(
    ("table", "marker"),
    [
        (codes.GLOBAL_TEXTS, "Global status codes (whole request):"),
        (codes.PACKET_TEXTS, "Per-message (packet) status codes:"),
        (codes.DELIVERY_TEXTS, "| deliverystatus | text |"),
    ],
    ids=["global", "packet", "delivery"],
)
def test_code_texts_match_the_document_table(table, marker):
    assert table == doc_table(marker)


def test_balance_code_texts_match_the_document():
    assert codes.BALANCE_GLOBAL_TEXTS == doc_balance_codes()


def test_every_documented_global_error_code_has_a_status():
    documented_errors = set(doc_table("Global status codes (whole request):")) - {
        codes.GLOBAL_SUCCESS
    }

    assert set(codes.GLOBAL_STATUS) == documented_errors


def test_every_documented_packet_code_has_a_status():
    assert set(codes.PACKET_STATUS) == set(doc_table("Per-message (packet) status codes:"))


def test_every_documented_delivery_code_has_a_status():
    assert set(codes.DELIVERY_STATUS) == set(doc_table("| deliverystatus | text |"))


def test_success_codes_are_ten():
    assert (codes.GLOBAL_SUCCESS, codes.PACKET_SUCCESS) == (10, 10)


def test_status_names_are_the_spec_names():
    assert [
        codes.QUEUED,
        codes.SENDING,
        codes.ACCEPTED,
        codes.SCHEDULED,
        codes.SENT,
        codes.DELIVERED,
        codes.UNDELIVERED,
        codes.REJECTED,
        codes.FAILED,
        codes.UNKNOWN,
    ] == [
        "queued",
        "sending",
        "accepted",
        "scheduled",
        "sent",
        "delivered",
        "undelivered",
        "rejected",
        "failed",
        "unknown",
    ]


# --- malformed replies raise MalformedReply, readably ------------------------------------------

NON_JSON_BODIES = {
    "php-warning": b"<br />\n<b>Warning</b>:  mysqli_connect(): (HY000/2002) in "
    b"/var/www/sms/api_sms_otp_send_json.php on line 12<br />\n",
    "html": b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    "empty": b"",
    "blank": b"  \r\n",
    "invalid-utf8": b"\xff\xfe\xfa\x80 not utf-8",
    "truncated": b'{"sending_respon": [{"globalstatus": 10',
    "php-warning-then-json": b'Notice: Undefined index: x\n{"sending_respon": []}',
}


@pytest.mark.parametrize("body", NON_JSON_BODIES.values(), ids=NON_JSON_BODIES.keys())
def test_non_json_body_raises_malformed_reply(body):
    with pytest.raises(MalformedReply, match="not JSON"):
        loads(body)


def test_non_json_message_shows_the_start_of_the_body():
    with pytest.raises(MalformedReply) as caught:
        loads(NON_JSON_BODIES["php-warning"])

    assert "Warning" in str(caught.value)


def test_non_json_message_is_cut_to_a_readable_length():
    with pytest.raises(MalformedReply) as caught:
        loads(b"<html>" + b"x" * 10_000)

    assert len(str(caught.value)) < 300


def test_non_json_str_body_raises_malformed_reply():
    with pytest.raises(MalformedReply, match="not JSON"):
        loads("<html>oops</html>")


def test_loads_reads_json_bytes():
    assert loads(b'{"Balance_Respon": {"globalstatus": 10}}') == {
        "Balance_Respon": {"globalstatus": 10}
    }


PARSERS = {
    "send": parse_send_reply,
    "balance": parse_balance_reply,
    "callback": parse_callback,
}
NOT_OBJECTS = [[], [{"sending_respon": []}], "sending_respon", 10, 1.5, None, True]


@pytest.mark.parametrize("parse", PARSERS.values(), ids=PARSERS.keys())
@pytest.mark.parametrize("data", NOT_OBJECTS, ids=repr)
def test_reply_that_is_not_an_object_raises_malformed_reply(parse, data):
    with pytest.raises(MalformedReply, match="not an object"):
        parse(data)


@pytest.mark.parametrize(
    ("parse", "data", "key"),
    [
        (parse_send_reply, {}, "sending_respon"),
        (parse_send_reply, {"balance_respon": [{"globalstatus": 10}]}, "sending_respon"),
        (parse_balance_reply, {"sending_respon": [{"globalstatus": 10}]}, "balance_respon"),
        (parse_callback, {"sendingid": 1, "deliverystatus": 3}, "status_respon"),
    ],
    ids=["send-empty", "send-given-balance", "balance-given-send", "callback-unwrapped"],
)
def test_reply_without_its_envelope_raises_malformed_reply(parse, data, key):
    with pytest.raises(MalformedReply, match=key):
        parse(data)


@pytest.mark.parametrize(
    ("parse", "key"),
    [(parse_send_reply, "sending_respon"), (parse_balance_reply, "balance_respon")],
    ids=["send", "balance"],
)
def test_empty_respon_list_raises_malformed_reply(parse, key):
    with pytest.raises(MalformedReply, match=f"{key} is an empty list"):
        parse({key: []})


@pytest.mark.parametrize(
    ("parse", "key"),
    [(parse_send_reply, "sending_respon"), (parse_balance_reply, "balance_respon")],
    ids=["send", "balance"],
)
@pytest.mark.parametrize("value", ["Success", 10, None, [[]]], ids=repr)
def test_respon_that_is_not_an_object_raises_malformed_reply(parse, key, value):
    with pytest.raises(MalformedReply, match=key):
        parse({key: value})


@pytest.mark.parametrize(
    ("parse", "key"),
    [(parse_send_reply, "sending_respon"), (parse_balance_reply, "balance_respon")],
    ids=["send", "balance"],
)
def test_respon_without_globalstatus_raises_malformed_reply(parse, key):
    with pytest.raises(MalformedReply, match="no globalstatus"):
        parse({key: [{"globalstatustext": "Success", "Balance": 1, "datapacket": []}]})


BAD_CODES = ["abc", "", "10.5", "0x0A", True, False, 1.5, None, [], {}, [10]]


@pytest.mark.parametrize("value", BAD_CODES, ids=repr)
def test_send_globalstatus_not_a_whole_number_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="globalstatus"):
        parse_send_reply(send_reply([], globalstatus=value))


@pytest.mark.parametrize("value", BAD_CODES, ids=repr)
def test_balance_globalstatus_not_a_whole_number_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="globalstatus"):
        parse_balance_reply(balance_reply(globalstatus=value))


@pytest.mark.parametrize(
    "entry", ["x", 10, None, True, [packet()], {"packet": "x"}, {"packet": None}], ids=repr
)
def test_packet_that_is_not_an_object_raises_malformed_reply(entry):
    with pytest.raises(MalformedReply, match=r"datapacket\[0\].* is not an object"):
        parse_send_reply(send_reply([entry]))


def test_malformed_packet_is_named_by_its_position():
    with pytest.raises(MalformedReply, match=r"datapacket\[1\]"):
        parse_send_reply(send_reply([packet(), "x"]))


@pytest.mark.parametrize("value", ["abc", 10, True], ids=repr)
def test_datapacket_that_is_not_a_list_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="datapacket is not a list"):
        parse_send_reply(send_reply(value))


@pytest.mark.parametrize("wrap", [True, False], ids=["wrapped", "unwrapped"])
def test_packet_without_sendingstatus_raises_malformed_reply(wrap):
    fields = packet()
    del fields["sendingstatus"]

    with pytest.raises(MalformedReply, match="no sendingstatus"):
        parse_send_reply(send_reply([{"packet": fields}] if wrap else [fields]))


@pytest.mark.parametrize("value", BAD_CODES, ids=repr)
def test_sendingstatus_not_a_whole_number_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="sendingstatus"):
        parse_send_reply(send_reply(wrapped(packet(sendingstatus=value))))


@pytest.mark.parametrize("value", ["abc", "12.5", 12.5, True, [1], {"id": 1}], ids=repr)
def test_sendingid_not_a_whole_number_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="sendingid"):
        parse_send_reply(send_reply(wrapped(packet(sendingid=value))))


@pytest.mark.parametrize(
    "value",
    ["abc", "NaN", "Infinity", "-Infinity", "sNaN", "320 IDR", True, [320], {"a": 1}],
    ids=repr,
)
def test_price_not_a_finite_number_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="price"):
        parse_send_reply(send_reply(wrapped(packet(price=value))))


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", True, [880]], ids=repr)
def test_balance_not_a_finite_number_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="Balance"):
        parse_balance_reply(balance_reply(Balance=value))


@pytest.mark.parametrize(
    "value", ["not-a-date", "2027-13-45", "18-09-2027", " ", True, ["2027-09-18"]], ids=repr
)
def test_expired_not_a_date_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="Expired"):
        parse_balance_reply(balance_reply(Expired=value))


@pytest.mark.parametrize("value", [[], {}, "abc", 5, None], ids=repr)
def test_status_respon_not_a_non_empty_list_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="status_respon"):
        parse_callback({"status_respon": value})


@pytest.mark.parametrize("item", ["x", 3, None, [delivery()]], ids=repr)
def test_delivery_update_that_is_not_an_object_raises_malformed_reply(item):
    with pytest.raises(MalformedReply, match=r"status_respon\[0\] is not an object"):
        parse_callback(callback(item))


@pytest.mark.parametrize("key", ["sendingid", "deliverystatus"])
def test_delivery_update_without_required_key_raises_malformed_reply(key):
    item = delivery()
    del item[key]

    with pytest.raises(MalformedReply, match=f"status_respon\\[0\\] has no {key}"):
        parse_callback(callback(item))


@pytest.mark.parametrize("value", ["abc", "", "3.5", 3.5, None, True], ids=repr)
def test_deliverystatus_not_a_whole_number_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="deliverystatus"):
        parse_callback(callback(delivery(deliverystatus=value)))


@pytest.mark.parametrize("value", ["abc", None, 1.5, False], ids=repr)
def test_callback_sendingid_not_a_whole_number_raises_malformed_reply(value):
    with pytest.raises(MalformedReply, match="sendingid"):
        parse_callback(callback(delivery(sendingid=value)))


def test_malformed_reply_is_a_value_error():
    assert issubclass(MalformedReply, ValueError)


# --- bugs found while writing these tests (see the reasons) ------------------------------------

CODE_FIELDS = {
    "send-globalstatus": lambda v: (parse_send_reply, send_reply([], globalstatus=v)),
    "balance-globalstatus": lambda v: (parse_balance_reply, balance_reply(globalstatus=v)),
    "sendingstatus": lambda v: (parse_send_reply, send_reply(wrapped(packet(sendingstatus=v)))),
    "sendingid": lambda v: (parse_send_reply, send_reply(wrapped(packet(sendingid=v)))),
    "deliverystatus": lambda v: (parse_callback, callback(delivery(deliverystatus=v))),
    "callback-sendingid": lambda v: (parse_callback, callback(delivery(sendingid=v))),
}


@pytest.mark.parametrize("field", CODE_FIELDS, ids=CODE_FIELDS.keys())
@pytest.mark.parametrize("value", ["Infinity", "-Infinity", "inf"])
def test_infinite_code_or_id_raises_malformed_reply(field, value):
    parse, data = CODE_FIELDS[field](value)

    with pytest.raises(MalformedReply):
        parse(data)


@pytest.mark.parametrize("field", CODE_FIELDS, ids=CODE_FIELDS.keys())
def test_signalling_nan_code_or_id_raises_malformed_reply(field):
    parse, data = CODE_FIELDS[field]("sNaN")

    with pytest.raises(MalformedReply):
        parse(data)


@pytest.mark.parametrize("field", CODE_FIELDS, ids=CODE_FIELDS.keys())
def test_huge_exponent_code_or_id_raises_malformed_reply(field):
    parse, data = CODE_FIELDS[field]("1e5000")

    with pytest.raises(MalformedReply):
        parse(data)


def test_deeply_nested_body_raises_malformed_reply():
    with pytest.raises(MalformedReply):
        loads(b"[" * 100_000 + b"]" * 100_000)


# --- any JSON-like value: the typed object or MalformedReply, nothing else ---------------------

KEY_NAMES = st.sampled_from(
    [
        "sending_respon",
        "SENDING_RESPON",
        "balance_respon",
        "status_respon",
        "globalstatus",
        "GlobalStatus",
        "globalstatustext",
        "datapacket",
        "packet",
        "Packet",
        "number",
        "sendingid",
        "sendingstatus",
        "sendingstatustext",
        "price",
        "Balance",
        "balance",
        "Expired",
        "deliverystatus",
        "deliverystatustext",
    ]
) | st.text(max_size=8)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(
        ["10", " 10 ", "10.0", "0", "60", "abc", "NaN", "", "2027-09-18", "0000-00-00", "1e3"]
    )
    | st.text(max_size=12)
    | st.sampled_from(["Infinity", "sNaN", "1e5000", "1_000", "١٠"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(KEY_NAMES, children, max_size=5)
    ),
    max_leaves=25,
)


VECTOR_BODIES = {
    prefix: [json.loads(path.read_bytes()) for path in VECTOR_FILES if path.name.startswith(prefix)]
    for prefix in PARSER_BY_PREFIX
}


def paths(value: Any, prefix: tuple = ()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


def mutate(draw, data: Any) -> Any:
    """One place of ``data`` replaced, deleted, renamed, wrapped in a list or unwrapped."""
    path = draw(st.sampled_from(list(paths(data))))
    if not path:
        return draw(JSON_VALUES)
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    key = path[-1]
    mutation = draw(st.sampled_from(["replace", "replace", "delete", "rename", "wrap", "unwrap"]))
    if mutation == "replace":
        parent[key] = draw(JSON_SCALARS | JSON_VALUES)
    elif mutation == "delete":
        del parent[key]
    elif mutation == "rename" and isinstance(parent, dict):
        parent[draw(KEY_NAMES)] = parent.pop(key)
    elif mutation == "wrap":
        parent[key] = [parent[key]]
    elif mutation == "unwrap" and isinstance(parent[key], list) and parent[key]:
        parent[key] = parent[key][0]
    return data


@st.composite
def mutated_vectors(draw, prefix: str):
    """A captured body of one kind (send_, balance_, callback_) with one to three mutations."""
    data = copy.deepcopy(draw(st.sampled_from(VECTOR_BODIES[prefix])))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        data = mutate(draw, data)
    return data


def is_int(value: Any) -> bool:
    return type(value) is int


def assert_typed(result: Any) -> None:
    if isinstance(result, SendReply):
        assert is_int(result.global_code) and isinstance(result.global_text, str)
        for item in result.packets:
            assert isinstance(item, PacketResult)
            assert is_int(item.code) and isinstance(item.number, str) and isinstance(item.text, str)
            assert item.sending_id is None or (is_int(item.sending_id) and item.sending_id != 0)
            assert item.price is None or (
                isinstance(item.price, Decimal) and item.price.is_finite()
            )
    elif isinstance(result, BalanceReply):
        assert is_int(result.global_code) and isinstance(result.global_text, str)
        assert result.balance is None or (
            isinstance(result.balance, Decimal) and result.balance.is_finite()
        )
        assert result.expires_on is None or type(result.expires_on) is dt.date
    else:
        assert isinstance(result, list) and result
        for update in result:
            assert isinstance(update, DeliveryUpdate)
            assert is_int(update.sending_id) and is_int(update.code)
            assert isinstance(update.number, str) and isinstance(update.text, str)


RESULT_TYPES = {
    parse_send_reply: SendReply,
    parse_balance_reply: BalanceReply,
    parse_callback: list,
}


@pytest.mark.parametrize("prefix", PARSER_BY_PREFIX, ids=PARSER_BY_PREFIX.keys())
@settings(max_examples=500, deadline=None, database=None)
@given(draws=st.data())
def test_any_json_value_gives_the_typed_object_or_malformed_reply(prefix, draws):
    parse = PARSER_BY_PREFIX[prefix]
    # Mutated captured bodies twice as often as random values: they get past the envelope.
    data = draws.draw(st.one_of(JSON_VALUES, mutated_vectors(prefix), mutated_vectors(prefix)))

    try:
        result = parse(data)
    except MalformedReply as exc:
        assert str(exc)
    else:
        assert isinstance(result, RESULT_TYPES[parse])
        assert_typed(result)


@settings(max_examples=300, deadline=None, database=None)
@given(body=st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_any_body_gives_json_or_malformed_reply(body):
    try:
        loads(body)
    except MalformedReply as exc:
        assert "not JSON" in str(exc)


# --- payloads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("channel", "kind", "expected"),
    [
        ("reguler", "send", "http://203.0.113.7/sms/api_sms_reguler_send_json.php"),
        ("reguler", "balance", "http://203.0.113.7/sms/api_sms_reguler_balance_json.php"),
        ("masking", "send", "http://203.0.113.7/sms/api_sms_masking_send_json.php"),
        ("masking", "balance", "http://203.0.113.7/sms/api_sms_masking_balance_json.php"),
        ("otp", "send", "http://203.0.113.7/sms/api_sms_otp_send_json.php"),
        ("otp", "balance", "http://203.0.113.7/sms/api_sms_otp_balance_json.php"),
    ],
)
def test_endpoint_for_channel_and_kind(channel, kind, expected):
    assert endpoint("http://203.0.113.7", channel, kind) == expected


@pytest.mark.parametrize(
    "base_url", ["https://sms.example.id", "https://sms.example.id/", "https://sms.example.id//"]
)
def test_endpoint_handles_trailing_slash_in_base_url(base_url):
    assert (
        endpoint(base_url, "otp", "send") == "https://sms.example.id/sms/api_sms_otp_send_json.php"
    )


def test_endpoint_keeps_a_path_in_base_url():
    assert (
        endpoint("https://reseller.example/gw/", "masking", "balance")
        == "https://reseller.example/gw/sms/api_sms_masking_balance_json.php"
    )


@pytest.mark.parametrize("channel", ["bulk", "OTP", "Reguler", "", "sms"])
def test_endpoint_unknown_channel_raises_value_error(channel):
    with pytest.raises(ValueError, match="unknown channel"):
        endpoint("http://203.0.113.7", channel, "send")


@pytest.mark.parametrize("kind", ["status", "Send", "", "callback"])
def test_endpoint_unknown_kind_raises_value_error(kind):
    with pytest.raises(ValueError, match="unknown endpoint kind"):
        endpoint("http://203.0.113.7", "reguler", kind)


@pytest.mark.parametrize(
    ("send_at", "expected"),
    [
        (dt.datetime(2030, 5, 1, 2, 30, tzinfo=UTC), "2030-05-01 09:30:00"),
        (dt.datetime(2030, 5, 1, 20, 15, 5, tzinfo=UTC), "2030-05-02 03:15:05"),
        (dt.datetime(2030, 12, 31, 17, 0, tzinfo=UTC), "2031-01-01 00:00:00"),
        (
            dt.datetime(2030, 5, 1, 4, 30, tzinfo=ZoneInfo("Europe/Amsterdam")),
            "2030-05-01 09:30:00",
        ),
        (
            dt.datetime(2030, 1, 1, 3, 30, tzinfo=ZoneInfo("Europe/Amsterdam")),
            "2030-01-01 09:30:00",
        ),
        (
            dt.datetime(2030, 4, 30, 21, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            "2030-05-01 09:30:00",
        ),
        (dt.datetime(2030, 5, 1, 11, 30, tzinfo=ZoneInfo("Asia/Jayapura")), "2030-05-01 09:30:00"),
        (dt.datetime(2030, 5, 1, 9, 30, tzinfo=JAKARTA), "2030-05-01 09:30:00"),
    ],
    ids=[
        "utc",
        "utc-next-day",
        "utc-next-year",
        "amsterdam-summer",
        "amsterdam-winter",
        "utc-5",
        "wit",
        "wib",
    ],
)
def test_sending_datetime_is_jakarta_local_time(send_at, expected):
    assert sending_datetime(send_at) == expected


def test_sending_datetime_drops_microseconds_without_rounding():
    assert (
        sending_datetime(dt.datetime(2030, 5, 1, 2, 30, 59, 999_999, tzinfo=UTC))
        == "2030-05-01 09:30:59"
    )


def test_sending_datetime_none_is_empty_for_now():
    assert sending_datetime(None) == ""


def test_sending_datetime_naive_raises_value_error():
    with pytest.raises(ValueError, match="aware"):
        sending_datetime(dt.datetime(2030, 5, 1, 9, 30))


def test_sending_datetime_with_tzinfo_without_offset_raises_value_error():
    class NoOffset(dt.tzinfo):
        def utcoffset(self, when):
            return None

    with pytest.raises(ValueError, match="aware"):
        sending_datetime(dt.datetime(2030, 5, 1, 9, 30, tzinfo=NoOffset()))


def test_send_body_shape():
    body = send_body(
        "0123456789abcdef0123456789abcdef",
        "https://app.example/smsgw/callback/SECRET/",
        [
            OutgoingPacket("+6281234567890", "Kode OTP 123456"),
            OutgoingPacket("+6285712345678", "Halo", dt.datetime(2030, 5, 1, 2, 30, tzinfo=UTC)),
        ],
    )

    assert body == {
        "apikey": "0123456789abcdef0123456789abcdef",
        "callbackurl": "https://app.example/smsgw/callback/SECRET/",
        "datapacket": [
            {"number": "6281234567890", "message": "Kode OTP 123456", "sendingdatetime": ""},
            {
                "number": "6285712345678",
                "message": "Halo",
                "sendingdatetime": "2030-05-01 09:30:00",
            },
        ],
    }


def test_send_body_is_json_serialisable():
    body = send_body("key", "", [OutgoingPacket("+6281234567890", "Halo — Rp 10.000 ✓")])

    assert json.loads(json.dumps(body)) == body


def test_send_body_with_empty_callback_url_sends_it_empty():
    assert send_body("key", "", [OutgoingPacket("+6281234567890", "Halo")])["callbackurl"] == ""


def test_send_body_numbers_lose_only_the_plus():
    body = send_body(
        "key", "", [OutgoingPacket("+6281234567890", "a"), OutgoingPacket("6285712345678", "b")]
    )

    assert [item["number"] for item in body["datapacket"]] == ["6281234567890", "6285712345678"]


def test_send_body_keeps_packet_order():
    packets = [OutgoingPacket(f"+62812000000{index:02d}", f"m{index}") for index in range(12)]

    body = send_body("key", "", packets)

    assert [item["message"] for item in body["datapacket"]] == [f"m{index}" for index in range(12)]


MESSAGES = ["Rp 10.000 & diskon 50%", "Kode OTP Anda: 123456 — jangan dibagikan ✓", "a+b=c?d#e/f"]


@pytest.mark.parametrize("message", MESSAGES)
def test_send_body_sends_message_plain_by_default(message):
    assert (
        send_body("key", "", [OutgoingPacket("+6281234567890", message)])["datapacket"][0][
            "message"
        ]
        == message
    )


def test_send_body_urlencodes_message_like_php_urlencode():
    body = send_body(
        "key",
        "",
        [OutgoingPacket("+6281234567890", "Rp 10.000 & diskon 50%")],
        urlencode_message=True,
    )

    assert body["datapacket"][0]["message"] == "Rp+10.000+%26+diskon+50%25"


def test_send_body_urlencodes_non_ascii_as_utf8():
    body = send_body(
        "key", "", [OutgoingPacket("+6281234567890", "Harga — ✓ é")], urlencode_message=True
    )

    assert body["datapacket"][0]["message"] == "Harga+%E2%80%94+%E2%9C%93+%C3%A9"


@pytest.mark.parametrize("message", MESSAGES)
def test_urlencoded_message_decodes_back_to_the_text(message):
    body = send_body("key", "", [OutgoingPacket("+6281234567890", message)], urlencode_message=True)
    encoded = body["datapacket"][0]["message"]

    assert (unquote_plus(encoded), encoded.isascii(), " " in encoded) == (message, True, False)


def test_urlencode_message_leaves_number_and_datetime_alone():
    packet_in = OutgoingPacket("+6281234567890", "a b", dt.datetime(2030, 5, 1, 2, 30, tzinfo=UTC))

    item = send_body("key", "", [packet_in], urlencode_message=True)["datapacket"][0]

    assert (item["number"], item["sendingdatetime"]) == ("6281234567890", "2030-05-01 09:30:00")


def test_balance_body_is_just_the_api_key():
    assert balance_body("0123456789abcdef") == {"apikey": "0123456789abcdef"}
