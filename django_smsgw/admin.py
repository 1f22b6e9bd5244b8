"""The admin: watch messages, batches, callbacks and balances; resend; check the balance.

Read-only by design: messages, batches and reports are written by the services, snapshots by a
balance check, and old records are removed by ``manage.py smsgw_cleanup``. The two things staff
can do, resend and check the balance, are POST-only and call the services.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import DecimalField, F, OuterRef, Q, QuerySet, Subquery
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from .exceptions import GatewayError
from .models import BalanceSnapshot, DeliveryReport, SmsBatch, SmsMessage
from .protocol import codes
from .services.balance import check_balance
from .services.resend import resend_messages
from .services.validation import normalize_number

# A bigint column cannot hold a longer number; a longer term is not a sending id.
MAX_ID_DIGITS = 18


class LargeTablePaginator(Paginator):
    """A changelist paginator that never counts a whole large table.

    Unfiltered on PostgreSQL, the count is the planner's row estimate (``pg_class.reltuples``,
    kept up to date by autovacuum) once that is past ``count_limit``. Otherwise the rows are
    counted up to ``count_limit`` only; beyond, the list says "more than" and pages up to it
    (filter or search to reach older rows). ``approximate`` tells the templates which applies.
    """

    count_limit = 10_000

    approximate: str = ""  # "", "estimate" or "more"

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return super().count
        connection = connections[queryset.db]
        if connection.vendor == "postgresql" and not queryset.query.where:
            estimate = self.estimated_rows(queryset)
            if estimate > self.count_limit:
                self.approximate = "estimate"
                return estimate
        counted = queryset.order_by()[: self.count_limit + 1].count()
        if counted > self.count_limit:
            self.approximate = "more"
            return self.count_limit
        return counted

    @staticmethod
    def estimated_rows(queryset: QuerySet) -> int:
        connection = connections[queryset.db]
        table = connection.ops.quote_name(queryset.model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
            row = cursor.fetchone()
        # -1: never vacuumed or analyzed, so no estimate yet.
        return int(row[0]) if row and row[0] > 0 else 0


class ReadOnly:
    """Records are written by the services only: what staff see is what happened."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class RecordAdmin(ReadOnly, admin.ModelAdmin):
    """Read-only, and fast on tables of any size."""

    paginator = LargeTablePaginator
    show_full_result_count = False
    list_per_page = 100

    def admin_url(self, model: type, view: str, *args: Any) -> str:
        opts = model._meta
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_{view}", args=args
        )


def pretty_json(value: Any) -> SafeString | str:
    if value in (None, "", [], {}):
        return "—"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False))


def code_and_text(code: int | None, text: str) -> str:
    if code is None:
        return "—"
    return f"{code} {text}".strip()


def number_condition(term: str) -> Q | None:
    """Messages to the number ``term``, however a person wrote it; None if it has no digits.

    A complete number matches exactly (in E.164, as stored); a partial one (``0812``,
    ``3456 78``) matches any number containing its digits, a leading 0 read as 62.
    """
    try:
        return Q(number=normalize_number(term))
    except ValidationError:
        digits = re.sub(r"\D", "", term)
        if not digits:
            return None
        if digits.startswith("0"):
            digits = "62" + digits[1:]
        return Q(number__contains=digits)


def sending_id_condition(term: str) -> Q | None:
    term = term.strip()
    if term.isdigit() and len(term) <= MAX_ID_DIGITS:
        return Q(sending_id=int(term))
    return None


def any_of(*conditions: Q | None) -> Q | None:
    present = [condition for condition in conditions if condition is not None]
    if not present:
        return None
    combined = present[0]
    for condition in present[1:]:
        combined |= condition
    return combined


class DeliveryStatusFilter(admin.SimpleListFilter):
    """The provider's delivery codes, by name (no query to list them)."""

    title = _("delivery status")
    parameter_name = "delivery_status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list:
        return [(str(code), f"{code} {text}") for code, text in codes.DELIVERY_TEXTS.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value is None:
            return queryset
        try:
            return queryset.filter(delivery_status=int(value))
        except ValueError:
            return queryset.none()


class DeliveryReportInline(ReadOnly, admin.TabularInline):
    model = DeliveryReport
    extra = 0
    can_delete = False
    ordering = ("received_at", "pk")
    fields = (
        "received_at",
        "delivery_status",
        "delivery_status_text",
        "number",
        "raw_pretty",
        "remote_addr",
        "applied_at",
    )
    readonly_fields = fields
    verbose_name_plural = _("delivery reports (as received)")

    @admin.display(description=_("raw"))
    def raw_pretty(self, report: DeliveryReport) -> SafeString | str:
        return pretty_json(report.raw)


@admin.register(SmsMessage)
class SmsMessageAdmin(RecordAdmin):
    list_display = (
        "created_at",
        "number",
        "channel",
        "status",
        "delivery",
        "price",
        "batch_link",
    )
    list_filter = ("status", "channel", "created_at")
    list_select_related = ("batch",)
    search_fields = ("number",)
    search_help_text = _(
        "A number in any format (0812…, +62 812…, 62812…, partial digits) or a sending id."
    )
    ordering = ("-created_at", "-pk")
    actions = ("resend_messages",)
    inlines = (DeliveryReportInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "number",
                    "channel",
                    "message",
                    "status",
                    "error",
                    "send_at",
                    "batch_link",
                    "resent_from_link",
                    "resends_links",
                    "created_at",
                    "updated_at",
                )
            },
        ),
        (
            _("Provider"),
            {
                "fields": (
                    "sending_id",
                    "sending",
                    "delivery",
                    "price",
                    "provider_reply_pretty",
                )
            },
        ),
        (
            _("Queue"),
            {
                "classes": ("collapse",),
                "fields": ("attempts", "next_attempt_at", "lease_expires_at", "request_started_at"),
            },
        ),
    )
    readonly_fields = tuple(name for __, options in fieldsets for name in options["fields"])

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        condition = any_of(number_condition(term), sending_id_condition(term)) if term else None
        if condition is None:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(condition), False

    @admin.display(description=_("delivery status"), ordering="delivery_status")
    def delivery(self, message: SmsMessage) -> str:
        return code_and_text(message.delivery_status, message.delivery_status_text)

    @admin.display(description=_("sending status"), ordering="sending_status")
    def sending(self, message: SmsMessage) -> str:
        return code_and_text(message.sending_status, message.sending_status_text)

    @admin.display(description=_("batch"), ordering="batch")
    def batch_link(self, message: SmsMessage) -> SafeString:
        batch = message.batch
        return format_html(
            '<a href="{}">{} #{}</a>',
            self.admin_url(SmsBatch, "change", batch.pk),
            batch.get_kind_display(),
            batch.pk,
        )

    @admin.display(description=_("resent from"))
    def resent_from_link(self, message: SmsMessage) -> SafeString | str:
        if message.resent_from_id is None:
            return "—"
        return format_html(
            '<a href="{}">SMS #{}</a>',
            self.admin_url(SmsMessage, "change", message.resent_from_id),
            message.resent_from_id,
        )

    @admin.display(description=_("resent as"))
    def resends_links(self, message: SmsMessage) -> SafeString | str:
        ids = list(message.resends.order_by("pk").values_list("pk", flat=True))
        if not ids:
            return "—"
        return format_html_join(
            ", ",
            '<a href="{}">SMS #{}</a>',
            ((self.admin_url(SmsMessage, "change", pk), pk) for pk in ids),
        )

    @admin.display(description=_("provider reply"))
    def provider_reply_pretty(self, message: SmsMessage) -> SafeString | str:
        return pretty_json(message.provider_reply)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        codename = get_permission_codename("resend", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    @admin.action(permissions=["resend"], description=_("Resend selected messages"))
    def resend_messages(self, request: HttpRequest, queryset: QuerySet) -> None:
        batches = resend_messages(queryset)
        total = sum(batch.total_count for batch in batches)
        accepted = sum(batch.accepted_count for batch in batches)
        not_sent = total - accepted
        summary = ngettext(
            "Resent %(total)d message: %(accepted)d accepted by the provider, %(failed)d not.",
            "Resent %(total)d messages: %(accepted)d accepted by the provider, %(failed)d not.",
            total,
        ) % {"total": total, "accepted": accepted, "failed": not_sent}
        errors = sorted(
            {entry["error"] for batch in batches for entry in batch.requests if "error" in entry}
        )
        links = format_html_join(
            ", ",
            '<a href="{}">{} batch #{}</a>',
            (
                (self.admin_url(SmsBatch, "change", batch.pk), batch.channel, batch.pk)
                for batch in batches
            ),
        )
        level = messages.SUCCESS
        if not_sent:
            level = messages.WARNING if accepted else messages.ERROR
        self.message_user(
            request,
            format_html("{} {} {}", summary, " ".join(errors), links),
            level,
        )


@admin.register(SmsBatch)
class SmsBatchAdmin(RecordAdmin):
    list_display = (
        "__str__",
        "created_at",
        "kind",
        "channel",
        "total_count",
        "accepted_count",
        "queued_count",
        "rejected_count",
        "failed_count",
        "unknown_count",
    )
    list_filter = ("kind", "channel", "created_at")
    ordering = ("-created_at", "-pk")
    fields = (
        "kind",
        "channel",
        "created_at",
        "messages_link",
        "total_count",
        "accepted_count",
        "queued_count",
        "rejected_count",
        "failed_count",
        "unknown_count",
        "requests_table",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # The request log grows with the batch; only its page needs it.
        return super().get_queryset(request).defer("requests")

    @admin.display(description=_("messages"))
    def messages_link(self, batch: SmsBatch) -> SafeString:
        url = self.admin_url(SmsMessage, "changelist") + f"?batch__id__exact={batch.pk}"
        return format_html('<a href="{}">{}</a>', url, _("Show this batch's messages"))

    @admin.display(description=_("provider requests"))
    def requests_table(self, batch: SmsBatch) -> SafeString | str:
        if not batch.requests:
            return "—"
        columns = (
            ("at", _("at")),
            ("messages", _("messages")),
            ("http_status", _("HTTP status")),
            ("global_status", _("global status")),
            ("duration_ms", _("duration (ms)")),
            ("error", _("error")),
        )
        head = format_html_join("", "<th>{}</th>", ((label,) for __, label in columns))
        rows = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (
                    format_html_join(
                        "", "<td>{}</td>", ((request_log_cell(entry, key),) for key, __ in columns)
                    ),
                )
                for entry in batch.requests
            ),
        )
        return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, rows)


def request_log_cell(entry: dict[str, Any], key: str) -> str:
    if key == "global_status" and entry.get(key) is not None:
        return f"{entry[key]} {entry.get('global_status_text', '')}".strip()
    value = entry.get(key)
    return "—" if value in (None, "") else str(value)


@admin.register(DeliveryReport)
class DeliveryReportAdmin(RecordAdmin):
    list_display = (
        "received_at",
        "sending_id",
        "number",
        "delivery",
        "message_link",
        "applied_at",
    )
    list_filter = (DeliveryStatusFilter, "received_at")
    search_fields = ("number",)
    search_help_text = _("A sending id, or digits of the number as the provider sent it.")
    ordering = ("-received_at", "-pk")
    fields = (
        "received_at",
        "sending_id",
        "number",
        "delivery",
        "message_link",
        "applied_at",
        "remote_addr",
        "raw_pretty",
    )
    readonly_fields = fields

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        term = search_term.strip()
        digits = re.sub(r"\D", "", term)
        condition = any_of(
            sending_id_condition(term), Q(number__contains=digits) if digits else None
        )
        if condition is None:
            return super().get_search_results(request, queryset, search_term)
        return queryset.filter(condition), False

    @admin.display(description=_("delivery status"), ordering="delivery_status")
    def delivery(self, report: DeliveryReport) -> str:
        return code_and_text(report.delivery_status, report.delivery_status_text)

    @admin.display(description=_("message"), ordering="message")
    def message_link(self, report: DeliveryReport) -> SafeString | str:
        if report.message_id is None:
            return _("not known yet")
        return format_html(
            '<a href="{}">SMS #{}</a>',
            self.admin_url(SmsMessage, "change", report.message_id),
            report.message_id,
        )

    @admin.display(description=_("raw (as received)"))
    def raw_pretty(self, report: DeliveryReport) -> SafeString | str:
        return pretty_json(report.raw)


@admin.register(BalanceSnapshot)
class BalanceSnapshotAdmin(RecordAdmin):
    list_display = (
        "checked_at",
        "channel",
        "balance",
        "movement",
        "expires_on",
        "global_status",
        "error",
    )
    list_filter = ("channel", "checked_at")
    ordering = ("-checked_at", "-pk")
    fields = (
        "checked_at",
        "channel",
        "balance",
        "movement",
        "expires_on",
        "global_status",
        "global_status_text",
        "error",
        "raw_pretty",
    )
    readonly_fields = fields
    change_list_template = "admin/django_smsgw/balancesnapshot/change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # How the balance moved since the channel's previous successful check: one correlated
        # subquery per row of the page (on the channel/time index), right whatever the filters.
        previous = (
            BalanceSnapshot.objects.filter(channel=OuterRef("channel"), balance__isnull=False)
            .filter(
                Q(checked_at__lt=OuterRef("checked_at"))
                | Q(checked_at=OuterRef("checked_at"), pk__lt=OuterRef("pk"))
            )
            .order_by("-checked_at", "-pk")
            .values("balance")[:1]
        )
        return (
            super()
            .get_queryset(request)
            .annotate(
                balance_change=F("balance")
                - Subquery(previous, output_field=DecimalField(max_digits=16, decimal_places=2))
            )
        )

    @admin.display(description=_("change since the previous check"))
    def movement(self, snapshot: BalanceSnapshot) -> str:
        change = getattr(snapshot, "balance_change", None)
        if change is None:
            return "—"
        change = Decimal(change).quantize(Decimal("0.01"))
        return f"+{change:,}" if change > 0 else f"{change:,}"

    @admin.display(description=_("raw response"))
    def raw_pretty(self, snapshot: BalanceSnapshot) -> SafeString | str:
        return pretty_json(snapshot.raw)

    def has_check_balance_permission(self, request: HttpRequest) -> bool:
        # A check stores a snapshot: the right to add snapshots is the right to check.
        codename = get_permission_codename("add", self.opts)
        return request.user.has_perm(f"{self.opts.app_label}.{codename}")

    def get_urls(self) -> list:
        name = f"{self.opts.app_label}_{self.opts.model_name}_check"
        view = self.admin_site.admin_view(require_POST(self.check_balance_view))
        return [path("check/", view, name=name), *super().get_urls()]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> Any:
        extra_context = {
            **(extra_context or {}),
            "channels": codes.CHANNELS,
            "can_check_balance": self.has_check_balance_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def check_balance_view(self, request: HttpRequest) -> HttpResponseRedirect:
        """Check one channel's balance (``channel`` in the POST) or, without one, every one."""
        if not self.has_check_balance_permission(request):
            raise PermissionDenied
        changelist = HttpResponseRedirect(self.admin_url(BalanceSnapshot, "changelist"))
        channel = request.POST.get("channel", "")
        if channel and channel not in codes.CHANNELS:
            self.message_user(request, _("Unknown channel %r.") % channel, messages.ERROR)
            return changelist
        for name in [channel] if channel else codes.CHANNELS:
            try:
                snapshot = check_balance(name)
            except GatewayError as exc:
                self.message_user(request, f"{name}: {exc.reason}", messages.ERROR)
            else:
                self.message_user(request, describe_snapshot(snapshot), messages.SUCCESS)
        return changelist


def describe_snapshot(snapshot: BalanceSnapshot) -> str:
    balance = "not given" if snapshot.balance is None else f"{snapshot.balance:,}"
    expires = snapshot.expires_on.isoformat() if snapshot.expires_on else "not given"
    return f"{snapshot.channel}: balance {balance}, expires {expires}"
