"""What the app records: every message, every submission, every callback, every balance check."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from .protocol import codes


class Status(models.TextChoices):
    """A message's normalized lifecycle (SPEC §4). Statuses only move forward."""

    QUEUED = codes.QUEUED, _("queued")
    SENDING = codes.SENDING, _("sending")
    ACCEPTED = codes.ACCEPTED, _("accepted")
    SCHEDULED = codes.SCHEDULED, _("scheduled")
    SENT = codes.SENT, _("sent")
    DELIVERED = codes.DELIVERED, _("delivered")
    UNDELIVERED = codes.UNDELIVERED, _("undelivered")
    REJECTED = codes.REJECTED, _("rejected")
    FAILED = codes.FAILED, _("failed")
    UNKNOWN = codes.UNKNOWN, _("unknown")


FINAL_STATUSES = (Status.DELIVERED, Status.UNDELIVERED, Status.REJECTED, Status.FAILED)

# Position in the lifecycle; a status may only be replaced by one of a higher rank.
STATUS_RANK = {
    Status.QUEUED: 0,
    Status.SENDING: 1,
    Status.ACCEPTED: 2,
    Status.UNKNOWN: 2,
    Status.SCHEDULED: 3,
    Status.SENT: 4,
    **{status: 5 for status in FINAL_STATUSES},
}


class Channel(models.TextChoices):
    REGULER = "reguler", _("reguler")
    MASKING = "masking", _("masking")
    OTP = "otp", _("otp")


class SmsBatch(models.Model):
    """One submission: a ``send_bulk`` call, a resend, or a single ``send_sms``."""

    class Kind(models.TextChoices):
        SINGLE = "single", _("single")
        BULK = "bulk", _("bulk")
        RESEND = "resend", _("resend")

    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BULK)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Counts of the submission's outcome, kept up to date as each chunk is recorded;
    # queued_count includes messages in flight.
    total_count = models.PositiveIntegerField(default=0)
    queued_count = models.PositiveIntegerField(default=0)
    accepted_count = models.PositiveIntegerField(default=0)
    rejected_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    unknown_count = models.PositiveIntegerField(default=0)
    # One entry per provider request that carried part of the batch (at most 1,000 messages):
    # when, how many, HTTP status, global status, duration, error. Never the API key.
    requests = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("SMS batch")
        verbose_name_plural = _("SMS batches")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} batch #{self.pk} ({self.total_count} messages)"


class SmsMessage(models.Model):
    """One SMS to one number, and everything the provider said about it."""

    batch = models.ForeignKey(SmsBatch, on_delete=models.CASCADE, related_name="messages")
    number = models.CharField(_("number (E.164)"), max_length=20, db_index=True)
    message = models.TextField()
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    send_at = models.DateTimeField(null=True, blank=True)
    # The provider's id for the message; delivery callbacks refer to it.
    sending_id = models.BigIntegerField(null=True, blank=True, unique=True)
    sending_status = models.SmallIntegerField(null=True, blank=True)
    sending_status_text = models.CharField(max_length=100, blank=True)
    delivery_status = models.SmallIntegerField(null=True, blank=True)
    delivery_status_text = models.CharField(max_length=100, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    error = models.TextField(blank=True, help_text=_("Why the message failed, in words."))
    # The reply packet exactly as the provider sent it.
    provider_reply = models.JSONField(null=True, blank=True)
    resent_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="resends"
    )
    # Queue bookkeeping: how often a worker tried, when it may try again, until when its claim
    # holds, and when the HTTP request started (to tell "never sent" from "maybe sent").
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    request_started_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("SMS message")
        verbose_name_plural = _("SMS messages")
        indexes = [
            models.Index(fields=["status", "created_at"], name="smsgw_msg_status_created"),
            models.Index(fields=["status", "next_attempt_at"], name="smsgw_msg_status_next"),
            models.Index(fields=["created_at"], name="smsgw_msg_created"),
        ]
        permissions = [("resend_smsmessage", _("Can resend SMS messages"))]

    def __str__(self) -> str:
        return f"SMS #{self.pk} to {self.number} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class DeliveryReport(models.Model):
    """One item of a delivery callback, as received: the audit trail and the key to idempotency.

    ``message`` stays empty while the ``sending_id`` is not known yet (the provider can call
    back before our send request returns); the report is applied once the id is recorded.
    """

    message = models.ForeignKey(
        SmsMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="reports"
    )
    sending_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    number = models.CharField(max_length=32, blank=True)
    delivery_status = models.SmallIntegerField(null=True, blank=True)
    delivery_status_text = models.CharField(max_length=100, blank=True)
    raw = models.JSONField()
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("delivery report")
        verbose_name_plural = _("delivery reports")

    def __str__(self) -> str:
        return f"Report {self.delivery_status} for sending id {self.sending_id}"


class BalanceSnapshot(models.Model):
    """One balance check of one channel, successful or not."""

    channel = models.CharField(max_length=10, choices=Channel.choices)
    balance = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)
    checked_at = models.DateTimeField(auto_now_add=True)
    global_status = models.SmallIntegerField(null=True, blank=True)
    global_status_text = models.CharField(max_length=100, blank=True)
    error = models.TextField(blank=True)
    raw = models.JSONField(null=True, blank=True)

    class Meta:
        verbose_name = _("balance snapshot")
        verbose_name_plural = _("balance snapshots")
        indexes = [
            models.Index(fields=["channel", "-checked_at"], name="smsgw_balance_channel_time")
        ]

    def __str__(self) -> str:
        return f"{self.channel} balance {self.balance} at {self.checked_at:%Y-%m-%d %H:%M}"

    @property
    def ok(self) -> bool:
        return self.global_status == codes.GLOBAL_SUCCESS
