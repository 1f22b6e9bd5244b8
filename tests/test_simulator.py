"""The provider simulator, driven over real HTTP as the app and the demo drive it."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests

from django_smsgw.simulator import Simulator
from django_smsgw.simulator.cli import build_parser, simulator_from_options

API_KEY = "test-key"
WIB = ZoneInfo("Asia/Jakarta")
CHANNELS = ("reguler", "masking", "otp")
PRICES = {"reguler": 250, "masking": 350, "otp": 320}
FIRST_SENDING_ID = 1287265
REPO_ROOT = Path(__file__).resolve().parents[1]


# --- helpers -----------------------------------------------------------------------------------


def send_url(sim: Simulator, channel: str = "reguler") -> str:
    return f"{sim.base_url}/sms/api_sms_{channel}_send_json.php"


def balance_url(sim: Simulator, channel: str = "reguler") -> str:
    return f"{sim.base_url}/sms/api_sms_{channel}_balance_json.php"


def packet(number: str = "081234567890", message: str = "Halo", when: str = "") -> dict[str, str]:
    return {"number": number, "message": message, "sendingdatetime": when}


def numbered(count: int) -> list[dict[str, str]]:
    return [packet(f"08123456{index:04d}") for index in range(count)]


def send(
    sim: Simulator,
    packets: list[dict[str, Any]],
    channel: str = "reguler",
    apikey: str = API_KEY,
    callbackurl: str = "",
    timeout: float = 5,
) -> Any:
    body = {"apikey": apikey, "callbackurl": callbackurl, "datapacket": packets}
    response = requests.post(send_url(sim, channel), json=body, timeout=timeout)
    assert response.status_code == 200
    return response.json()


def post_raw(url: str, body: bytes) -> Any:
    response = requests.post(url, data=body, timeout=5)
    assert response.status_code == 200
    return response.json()


def check_balance(sim: Simulator, channel: str = "reguler", apikey: str = API_KEY) -> Any:
    response = requests.post(balance_url(sim, channel), json={"apikey": apikey}, timeout=5)
    assert response.status_code == 200
    return response.json()


def packets_of(response: Any) -> list[dict[str, Any]]:
    return [entry["packet"] for entry in response["sending_respon"][0]["datapacket"]]


def global_error(code: int, text: str, kind: str = "sending") -> dict[str, Any]:
    return {f"{kind}_respon": [{"globalstatus": code, "globalstatustext": text}]}


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    """The app's side of the callbacks: records every POST it gets."""

    def __init__(self, status: int = 200) -> None:
        self.posts: list[dict[str, Any]] = []
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(
                    {
                        "path": self.path,
                        "content_type": self.headers["Content-Type"],
                        "body": json.loads(body),
                        "at": time.time(),
                    }
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/smsgw/callback/s3cret/"
        serve = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        serve.start()

    def items(self) -> list[dict[str, Any]]:
        return [item for post in self.posts for item in post["body"]["status_respon"]]

    def codes_by_id(self) -> dict[int, list[str]]:
        codes: dict[int, list[str]] = {}
        for item in self.items():
            codes.setdefault(item["sendingid"], []).append(item["deliverystatus"])
        return codes

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sim() -> Iterator[Simulator]:
    with Simulator(api_key=API_KEY, callback_delay=0.05) as simulator:
        yield simulator


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


# --- sending -----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_send_is_accepted_and_charged_at_the_channels_price(sim: Simulator, channel: str) -> None:
    response = send(sim, [packet("081234567890")], channel=channel)

    assert response == {
        "sending_respon": [
            {
                "globalstatus": 10,
                "globalstatustext": "Success",
                "datapacket": [
                    {
                        "packet": {
                            "number": "6281234567890",
                            "sendingid": FIRST_SENDING_ID,
                            "sendingstatus": 10,
                            "sendingstatustext": "success",
                            "price": PRICES[channel],
                        }
                    }
                ],
            }
        ]
    }
    state = sim.state()
    assert state["balances"][channel] == 10_000_000 - PRICES[channel]
    assert state["sendingids"][FIRST_SENDING_ID]["channel"] == channel
    assert state["sendingids"][FIRST_SENDING_ID]["message"] == "Halo"


@pytest.mark.parametrize(
    "number",
    ["081234567890", "6281234567890", "+6281234567890", "0812-3456-7890", "0812 3456 7890"],
)
def test_every_number_form_is_echoed_in_62_form(sim: Simulator, number: str) -> None:
    response = send(sim, [packet(number)])

    assert packets_of(response)[0]["number"] == "6281234567890"
    assert sim.received_numbers() == ["6281234567890"]


def test_packets_come_back_in_request_order_with_increasing_ids(sim: Simulator) -> None:
    first = packets_of(send(sim, [packet("081111111111"), packet("1"), packet("082222222222")]))
    second = packets_of(send(sim, [packet("083333333333")]))

    assert [(p["number"], p["sendingid"]) for p in first + second] == [
        ("6281111111111", FIRST_SENDING_ID),
        ("1", 0),
        ("6282222222222", FIRST_SENDING_ID + 1),
        ("6283333333333", FIRST_SENDING_ID + 2),
    ]


def test_scheduled_send_records_its_time_and_an_immediate_one_records_now(sim: Simulator) -> None:
    before = dt.datetime.now(WIB).replace(microsecond=0, tzinfo=None)
    send(sim, [packet(), packet(when="2030-05-01 09:30:00")])
    after = dt.datetime.now(WIB).replace(tzinfo=None)

    records = sim.state()["sendingids"]
    now_recorded = dt.datetime.strptime(
        records[FIRST_SENDING_ID]["sendingdatetime"], "%Y-%m-%d %H:%M:%S"
    )
    assert before <= now_recorded <= after
    assert records[FIRST_SENDING_ID + 1]["sendingdatetime"] == "2030-05-01 09:30:00"


def test_received_numbers_keeps_every_acceptance_including_repeats(sim: Simulator) -> None:
    send(sim, [packet("081234567890"), packet("081234567890"), packet("1")])
    send(sim, [packet("6281234567890")])

    assert sim.received_numbers() == ["6281234567890"] * 3
    assert sim.state()["packets_received"] == 4
    assert sim.state()["packets_accepted"] == 3


def test_thousand_packets_are_accepted(sim: Simulator) -> None:
    response = send(sim, numbered(1000))

    assert [p["sendingstatus"] for p in packets_of(response)] == [10] * 1000
    assert sim.state()["packets_accepted"] == 1000


def test_a_keep_alive_connection_serves_several_requests(sim: Simulator) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", int(sim.base_url.rsplit(":", 1)[1]))
    body = json.dumps({"apikey": API_KEY})
    sockets = []
    for _ in range(2):
        connection.request("POST", "/sms/api_sms_otp_balance_json.php", body=body)
        response = connection.getresponse()
        assert json.loads(response.read())["balance_respon"][0]["globalstatus"] == 10
        sockets.append(connection.sock)
    connection.close()

    assert sockets[0] is not None and sockets[0] is sockets[1]


def test_unknown_path_is_404(sim: Simulator) -> None:
    assert (
        requests.post(f"{sim.base_url}/sms/api_sms_bulk_send_json.php", timeout=5).status_code
        == 404
    )


# --- global codes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        json.dumps({"datapacket": []}).encode(),
        json.dumps({"apikey": API_KEY, "datapacket": {"number": "081234567890"}}).encode(),
        json.dumps({"apikey": API_KEY, "datapacket": ["081234567890"]}).encode(),
        json.dumps({"apikey": API_KEY, "datapacket": [packet(when="tomorrow")]}).encode(),
        json.dumps(
            {"apikey": API_KEY, "datapacket": [packet(when="2030-02-30 10:00:00")]}
        ).encode(),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "not-an-object",
        "no-apikey",
        "datapacket-not-a-list",
        "packet-not-an-object",
        "bad-sendingdatetime",
        "impossible-date",
    ],
)
def test_malformed_send_is_global_20_and_charges_nothing(sim: Simulator, body: bytes) -> None:
    assert post_raw(send_url(sim), body) == global_error(20, "Json Post Error")
    assert sim.state()["packets_accepted"] == 0
    assert sim.state()["balances"]["reguler"] == 10_000_000


def test_wrong_api_key_is_global_30(sim: Simulator) -> None:
    assert send(sim, [packet()], apikey="other") == global_error(30, "ApiKey not register")
    assert check_balance(sim, apikey="other") == global_error(30, "ApiKey not register", "balance")
    assert sim.received_numbers() == []


def test_expired_balance_refuses_sends_with_50_but_still_reports_the_balance() -> None:
    yesterday = dt.datetime.now(WIB).date() - dt.timedelta(days=1)
    with Simulator(api_key=API_KEY, expires_on=yesterday) as sim:
        assert send(sim, [packet()]) == global_error(50, "Expired Balance")
        assert check_balance(sim)["balance_respon"][0]["Expired"] == yesterday.isoformat()
        assert sim.received_numbers() == []


def test_more_than_a_thousand_packets_is_global_55(sim: Simulator) -> None:
    assert send(sim, numbered(1001)) == global_error(55, "Maximum Data")
    assert sim.state()["packets_accepted"] == 0


# --- packet codes ------------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["1", "0212345678", "6221234567", "0812", "", "08123abc7890"])
def test_invalid_number_is_refused_with_60_and_echoed_as_sent(sim: Simulator, number: str) -> None:
    assert packets_of(send(sim, [packet(number)])) == [
        {
            "number": number,
            "sendingid": 0,
            "sendingstatus": 60,
            "sendingstatustext": "Invalid Number",
            "price": 0,
        }
    ]
    assert sim.state()["balances"]["reguler"] == 10_000_000


@pytest.mark.parametrize("message", ["", "x" * 481, None], ids=["empty", "481-chars", "missing"])
def test_invalid_message_is_refused_with_70(sim: Simulator, message: str | None) -> None:
    entry = {"number": "081234567890", "sendingdatetime": ""}
    if message is not None:
        entry["message"] = message

    refused = packets_of(send(sim, [entry]))[0]

    assert (refused["sendingstatus"], refused["sendingstatustext"]) == (70, "Invalid Message")
    assert (refused["sendingid"], refused["price"]) == (0, 0)


def test_message_of_480_chars_and_url_encoded_message_are_accepted(sim: Simulator) -> None:
    encoded = "Kode%20OTP%20anda%3A%20123456"
    response = send(sim, [packet(message="x" * 480), packet(message=encoded)])

    assert [p["sendingstatus"] for p in packets_of(response)] == [10, 10]
    assert sim.state()["sendingids"][FIRST_SENDING_ID + 1]["message"] == encoded


def test_balance_below_the_price_refuses_with_80_without_charging() -> None:
    with Simulator(api_key=API_KEY, balances={"otp": 700}) as sim:
        response = send(sim, [packet(), packet(), packet()], channel="otp")

        assert [(p["sendingstatus"], p["price"]) for p in packets_of(response)] == [
            (10, 320),
            (10, 320),
            (80, 0),
        ]
        assert packets_of(response)[2]["sendingstatustext"] == "Minimum Balance"
        assert check_balance(sim, "otp")["balance_respon"][0]["Balance"] == 60


# --- balance -----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_balance_reports_the_channels_own_balance(channel: str) -> None:
    expiry = dt.date(2027, 9, 18)
    balances = {"reguler": 880, "masking": 990, "otp": 770}
    with Simulator(api_key=API_KEY, balances=balances, expires_on=expiry) as sim:
        assert check_balance(sim, channel) == {
            "balance_respon": [
                {
                    "globalstatus": 10,
                    "globalstatustext": "Success",
                    "Balance": balances[channel],
                    "Expired": "2027-09-18",
                }
            ]
        }


def test_balance_with_bad_json_is_global_20(sim: Simulator) -> None:
    assert post_raw(balance_url(sim), b"{") == global_error(20, "Json Post Error", "balance")


@pytest.mark.parametrize("code,text", [(35, "Check Balance Limit"), (25, "Error Check Balance")])
def test_injected_balance_codes(sim: Simulator, code: int, text: str) -> None:
    sim.inject("global", code=code, endpoint="balance")

    assert check_balance(sim) == global_error(code, text, "balance")
    assert check_balance(sim)["balance_respon"][0]["globalstatus"] == 10


# --- faults ------------------------------------------------------------------------------------


def test_global_fault_answers_its_code_for_count_requests_then_stops(sim: Simulator) -> None:
    sim.inject("global", count=2, code=40)

    assert send(sim, [packet()]) == global_error(40, "Ip address not register")
    assert send(sim, [packet()]) == global_error(40, "Ip address not register")
    assert packets_of(send(sim, [packet()]))[0]["sendingstatus"] == 10
    assert sim.state()["packets_accepted"] == 1


def test_global_fault_with_an_unlisted_code_says_unknown(sim: Simulator) -> None:
    sim.inject("global", code=99)

    assert send(sim, [packet()]) == global_error(99, "Unknown")


def test_send_faults_leave_balance_requests_alone_unless_endpoint_any(sim: Simulator) -> None:
    sim.inject("global", code=40)
    assert check_balance(sim)["balance_respon"][0]["globalstatus"] == 10
    assert send(sim, [packet()])["sending_respon"][0]["globalstatus"] == 40

    sim.inject("global", code=40, endpoint="any")
    assert check_balance(sim) == global_error(40, "Ip address not register", "balance")


def test_packet_fault_refuses_every_packet_with_its_code(sim: Simulator) -> None:
    sim.inject("packet", code=90)

    refused = packets_of(send(sim, [packet(), packet("082222222222")]))

    assert [(p["sendingstatus"], p["sendingstatustext"], p["sendingid"]) for p in refused] == [
        (90, "System Error", 0),
        (90, "System Error", 0),
    ]
    assert sim.state()["packets_accepted"] == 0
    assert sim.state()["packets_received"] == 2


def test_http500_answers_an_html_page_and_processes_nothing(sim: Simulator) -> None:
    sim.inject("http500")

    response = requests.post(send_url(sim), json={"apikey": API_KEY, "datapacket": [packet()]})

    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("text/html")
    assert "Internal Server Error" in response.text
    assert sim.received_numbers() == []


def test_http500_with_process_accepts_the_messages(sim: Simulator) -> None:
    sim.inject("http500", process=True)

    response = requests.post(send_url(sim), json={"apikey": API_KEY, "datapacket": [packet()]})

    assert response.status_code == 500
    assert sim.received_numbers() == ["6281234567890"]


def test_garbage_answers_200_with_a_body_that_is_not_json(sim: Simulator) -> None:
    sim.inject("garbage")

    response = requests.post(send_url(sim), json={"apikey": API_KEY, "datapacket": [packet()]})

    assert response.status_code == 200
    assert "<b>Warning</b>" in response.text
    with pytest.raises(ValueError):
        response.json()
    assert sim.received_numbers() == ["6281234567890"]


def test_slow_reply_times_out_the_client_but_the_messages_are_accepted(sim: Simulator) -> None:
    sim.inject("slow", seconds=0.5)

    with pytest.raises(requests.Timeout):
        send(sim, [packet()], timeout=0.1)

    assert sim.state()["packets_accepted"] == 1
    assert sim.state()["balances"]["reguler"] == 10_000_000 - 250


def test_slow_reply_answers_normally_to_a_patient_client(sim: Simulator) -> None:
    sim.inject("slow", seconds=0.2)

    started = time.monotonic()
    response = send(sim, [packet()])

    assert time.monotonic() - started >= 0.2
    assert packets_of(response)[0]["sendingstatus"] == 10


def test_drop_closes_the_connection_after_processing(sim: Simulator) -> None:
    sim.inject("drop")

    with pytest.raises(requests.ConnectionError):
        send(sim, [packet()])

    assert sim.received_numbers() == ["6281234567890"]
    assert packets_of(send(sim, [packet()]))[0]["sendingid"] == FIRST_SENDING_ID + 1


@pytest.mark.parametrize(
    "fault,params",
    [
        ("teapot", {}),
        ("global", {}),
        ("slow", {"code": 20}),
        ("packet", {"code": 90, "endpoint": "balance"}),
        ("global", {"code": 20, "endpoint": "sms"}),
        ("drop", {"count": 0}),
    ],
)
def test_inject_rejects_mistakes(sim: Simulator, fault: str, params: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sim.inject(fault, **params)


# --- control endpoints -------------------------------------------------------------------------


def test_faults_can_be_injected_over_http(sim: Simulator) -> None:
    response = requests.post(
        f"{sim.base_url}/_simulator/faults", json={"fault": "global", "count": 1, "code": 55}
    )

    assert response.status_code == 200
    assert send(sim, [packet()]) == global_error(55, "Maximum Data")


def test_a_bad_fault_over_http_is_400(sim: Simulator) -> None:
    response = requests.post(f"{sim.base_url}/_simulator/faults", json={"fault": "teapot"})

    assert response.status_code == 400
    assert "teapot" in response.json()["error"]


def test_state_over_http_matches_state(sim: Simulator) -> None:
    send(sim, [packet()], channel="masking")

    state = requests.get(f"{sim.base_url}/_simulator/state").json()

    assert state["sendingids"][str(FIRST_SENDING_ID)]["number"] == "6281234567890"
    assert state["balances"]["masking"] == 10_000_000 - 350
    assert (state["requests"], state["send_requests"]) == (1, 1)
    assert state == json.loads(json.dumps(sim.state()))


def test_reset_over_http_clears_everything_but_keeps_ids_unique(sim: Simulator) -> None:
    send(sim, [packet()])
    sim.inject("global", code=30)

    assert requests.post(f"{sim.base_url}/_simulator/reset").status_code == 200

    state = sim.state()
    assert (state["requests"], state["packets_accepted"], state["sendingids"]) == (0, 0, {})
    assert state["balances"]["reguler"] == 10_000_000
    assert sim.received_numbers() == []
    assert packets_of(send(sim, [packet()]))[0]["sendingid"] == FIRST_SENDING_ID + 1


def test_stop_is_idempotent_and_closes_the_port() -> None:
    sim = Simulator(api_key=API_KEY).start()
    url = balance_url(sim)
    sim.stop()
    sim.stop()

    with pytest.raises(requests.ConnectionError):
        requests.post(url, json={"apikey": API_KEY}, timeout=2)


# --- quirky mode -------------------------------------------------------------------------------


def send_shape(response: Any) -> str:
    outer = response["sending_respon"]
    if isinstance(outer, dict):
        return "bare-object"
    if outer[0]["globalstatus"] == "10" and outer[0]["datapacket"][0]["packet"]["price"] == "250":
        return "numbers-as-strings"
    if "packet" not in outer[0]["datapacket"][0] and outer[0]["datapacket"][0]["sendingid"]:
        return "unwrapped-packets"
    return "normal"


def balance_shape(response: Any) -> str:
    outer = response["balance_respon"]
    if isinstance(outer, dict):
        return "bare-object"
    if isinstance(outer[0].get("Balance", outer[0].get("balance")), str):
        return "numbers-as-strings"
    if "balance" in outer[0]:
        return "lowercase-balance"
    return "normal"


def test_quirky_send_answers_rotate_through_the_odd_shapes() -> None:
    with Simulator(api_key=API_KEY, quirky=True) as sim:
        shapes = {send_shape(send(sim, [packet()])) for _ in range(3)}

        assert shapes == {"bare-object", "numbers-as-strings", "unwrapped-packets"}
        assert sim.state()["packets_accepted"] == 3


def test_quirky_balance_answers_rotate_through_the_odd_shapes() -> None:
    with Simulator(api_key=API_KEY, quirky=True) as sim:
        shapes = {balance_shape(check_balance(sim)) for _ in range(3)}

        assert shapes == {"bare-object", "numbers-as-strings", "lowercase-balance"}


# --- delivery callbacks ------------------------------------------------------------------------


def test_callbacks_post_sent_then_delivered_to_the_secret_url(
    sim: Simulator, receiver: Receiver
) -> None:
    sendingid = packets_of(send(sim, [packet()], callbackurl=receiver.url))[0]["sendingid"]

    wait_until(lambda: len(receiver.items()) == 2)
    assert receiver.items() == [
        {"sendingid": sendingid, "number": "6281234567890", "deliverystatus": "2",
         "deliverystatustext": "Sent"},
        {"sendingid": sendingid, "number": "6281234567890", "deliverystatus": "3",
         "deliverystatustext": "Delivered Success"},
    ]  # fmt: skip
    assert {post["path"] for post in receiver.posts} == {"/smsgw/callback/s3cret/"}
    assert {post["content_type"] for post in receiver.posts} == {"application/json"}
    wait_until(lambda: sim.state()["callbacks_posted"] == 2)
    assert sim.state()["callback_errors"] == 0


def test_no_callbacks_are_scheduled_without_a_callback_url(receiver: Receiver) -> None:
    with Simulator(api_key=API_KEY, callback_delay=10) as sim:
        send(sim, numbered(5))
        assert sim.state()["callbacks_pending"] == 0

        send(sim, numbered(5), callbackurl=receiver.url)
        assert sim.state()["callbacks_pending"] == 10


def test_delivery_outcomes_use_the_longest_matching_suffix(receiver: Receiver) -> None:
    outcomes = {"99": 4, "199": 7}
    with Simulator(api_key=API_KEY, callback_delay=0.05, delivery_outcomes=outcomes) as sim:
        numbers = ["081234560199", "081234560299", "081234560300"]
        ids = [
            p["sendingid"]
            for p in packets_of(send(sim, [packet(n) for n in numbers], callbackurl=receiver.url))
        ]

        wait_until(lambda: len(receiver.items()) == 6)

    finals = {item["sendingid"]: item for item in receiver.items() if item["deliverystatus"] != "2"}
    assert [(finals[i]["deliverystatus"], finals[i]["deliverystatustext"]) for i in ids] == [
        ("7", "Reject"),
        ("4", "Delivered Error"),
        ("3", "Delivered Success"),
    ]


def test_scheduled_send_reports_schedule_now_and_sent_at_its_time(
    sim: Simulator, receiver: Receiver
) -> None:
    at = (dt.datetime.now(WIB) + dt.timedelta(seconds=2)).replace(microsecond=0)
    send(sim, [packet(when=at.strftime("%Y-%m-%d %H:%M:%S"))], callbackurl=receiver.url)

    wait_until(lambda: len(receiver.items()) == 1)
    assert receiver.items()[0]["deliverystatus"] == "1"
    assert receiver.posts[0]["at"] < at.timestamp()

    wait_until(lambda: len(receiver.items()) == 3, timeout=4)
    assert [item["deliverystatus"] for item in receiver.items()] == ["1", "2", "3"]
    assert receiver.posts[1]["at"] >= at.timestamp()


def test_duplicates_posts_every_body_twice(receiver: Receiver) -> None:
    with Simulator(api_key=API_KEY, callback_delay=0.05, duplicates=True) as sim:
        send(sim, [packet()], callbackurl=receiver.url)
        wait_until(lambda: len(receiver.posts) == 4)

    bodies = [post["body"] for post in receiver.posts]
    assert bodies[0] == bodies[1] and bodies[2] == bodies[3] and bodies[0] != bodies[2]


def test_reorder_delivers_the_final_code_before_sent_and_shuffles(receiver: Receiver) -> None:
    with Simulator(api_key=API_KEY, callback_delay=0.05, reorder=True) as sim:
        ids = [
            p["sendingid"] for p in packets_of(send(sim, numbered(50), callbackurl=receiver.url))
        ]
        wait_until(lambda: len(receiver.items()) == 100)

    assert all(codes == ["3", "2"] for codes in receiver.codes_by_id().values())
    first_post_ids = [item["sendingid"] for item in receiver.posts[0]["body"]["status_respon"]]
    assert sorted(first_post_ids) == ids and first_post_ids != ids


def test_updates_due_together_are_batched(receiver: Receiver) -> None:
    with Simulator(api_key=API_KEY, callback_delay=0.05, callback_batch=10) as sim:
        send(sim, numbered(25), callbackurl=receiver.url)
        wait_until(lambda: len(receiver.items()) == 50)

    sizes = [len(post["body"]["status_respon"]) for post in receiver.posts]
    assert sizes == [10, 10, 5, 10, 10, 5]
    assert all(codes == ["2", "3"] for codes in receiver.codes_by_id().values())


def test_failed_callbacks_are_counted_and_later_ones_still_go_out(
    sim: Simulator, receiver: Receiver
) -> None:
    failing = Receiver(status=500)
    failing.close()  # nothing listens there any more
    send(sim, [packet()], callbackurl=failing.url)
    wait_until(lambda: sim.state()["callback_errors"] == 2)

    send(sim, [packet()], callbackurl=receiver.url)
    wait_until(lambda: len(receiver.items()) == 2)


def test_a_non_2xx_answer_counts_as_a_callback_error(sim: Simulator) -> None:
    failing = Receiver(status=500)
    try:
        send(sim, [packet()], callbackurl=failing.url)
        wait_until(lambda: sim.state()["callbacks_posted"] == 2)
    finally:
        failing.close()

    assert sim.state()["callback_errors"] == 2


# --- command line ------------------------------------------------------------------------------


def test_cli_serves_until_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SMSGW_API_KEY": "from-env"}
    process = subprocess.Popen(
        [sys.executable, "-m", "django_smsgw.simulator", "--port", str(port)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    watchdog = threading.Timer(10, process.kill)
    watchdog.start()
    try:
        banner = [process.stdout.readline() for _ in range(2)]
        assert f"http://127.0.0.1:{port}" in banner[0]
        assert "from-env" in banner[1]

        response = requests.post(
            f"http://127.0.0.1:{port}/sms/api_sms_otp_balance_json.php",
            json={"apikey": "from-env"},
            timeout=5,
        )
        assert response.json()["balance_respon"][0]["Balance"] == 10_000_000

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=5) == 0
    finally:
        watchdog.cancel()
        process.kill()
        process.wait()


def test_cli_options_configure_the_simulator(receiver: Receiver) -> None:
    options = build_parser().parse_args(
        ["--port", "0", "--api-key", "k", "--balance", "5000", "--callback-delay", "0.05",
         "--callback-batch", "7", "--quirky", "--undelivered-suffix", "99", "98"]
    )  # fmt: skip
    numbers = ["081234567899", "081234567898"] + [f"0812345670{i:02d}" for i in range(6)]
    with simulator_from_options(vars(options)) as sim:
        answer = check_balance(sim, "masking", apikey="k")
        assert balance_shape(answer) == "numbers-as-strings"
        assert answer["balance_respon"][0]["Balance"] == "5000"

        send(sim, [packet(n) for n in numbers], apikey="k", callbackurl=receiver.url)
        wait_until(lambda: len(receiver.items()) == 16)

    assert [len(post["body"]["status_respon"]) for post in receiver.posts] == [7, 1, 7, 1]
    finals = [item for item in receiver.items() if item["deliverystatus"] != "2"]
    assert sorted(item["deliverystatus"] for item in finals) == ["3"] * 6 + ["4"] * 2
    assert {item["number"][-2:] for item in finals if item["deliverystatus"] == "4"} == {
        "99",
        "98",
    }


def test_management_command_accepts_the_same_options_as_the_cli() -> None:
    from django_smsgw.management.commands.smsgw_simulator import Command

    argv = ["--port", "9999", "--api-key", "k", "--balance", "5", "--callback-delay", "0.5",
            "--callback-batch", "3", "--duplicates", "--reorder", "--quirky",
            "--undelivered-suffix", "1", "--undelivered-suffix", "2"]  # fmt: skip
    cli_options = vars(build_parser().parse_args(argv))
    command_options = vars(Command().create_parser("manage.py", "smsgw_simulator").parse_args(argv))

    assert cli_options.items() <= command_options.items()
