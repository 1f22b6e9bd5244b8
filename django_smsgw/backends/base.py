from __future__ import annotations

import itertools
from decimal import Decimal

from ..protocol import codes
from ..protocol.payloads import OutgoingPacket
from ..protocol.replies import BalanceReply, PacketResult, SendReply


class BaseBackend:
    """Sends one request's worth of packets (≤1,000, one channel) and returns the parsed reply.

    Transport failures raise ``ProviderUnreachable`` (provably not sent) or ``OutcomeUnknown``
    (may have been processed); the services record them on the messages.
    """

    def __init__(self, **kwargs) -> None:
        self.options = kwargs

    def send_packets(self, channel: str, packets: list[OutgoingPacket]) -> SendReply:
        raise NotImplementedError

    def check_balance(self, channel: str) -> BalanceReply:
        raise NotImplementedError

    @property
    def callback_url(self) -> str:
        from .. import conf

        return conf.get("CALLBACK_URL")


# Fake sending ids for the development backends, unique within the process.
_fake_ids = itertools.count(1)


class AcceptingBackend(BaseBackend):
    """A backend that accepts every packet, as a provider with endless balance would."""

    fake_balance = Decimal("1000000")

    def accept(self, packets: list[OutgoingPacket]) -> SendReply:
        results = [
            PacketResult(
                number=packet.number.lstrip("+"),
                sending_id=next(_fake_ids),
                code=codes.PACKET_SUCCESS,
                text="Success",
                price=Decimal(0),
            )
            for packet in packets
        ]
        return SendReply(global_code=codes.GLOBAL_SUCCESS, global_text="Success", packets=results)

    def check_balance(self, channel: str) -> BalanceReply:
        return BalanceReply(
            global_code=codes.GLOBAL_SUCCESS,
            global_text="Success",
            balance=self.fake_balance,
            expires_on=None,
            raw={"backend": type(self).__name__},
        )
