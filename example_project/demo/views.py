"""A page to send single and bulk messages by hand; the admin shows what happens next."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse

from django_smsgw import send_bulk, send_sms
from django_smsgw.exceptions import GatewayError
from django_smsgw.models import SmsMessage

from .forms import BulkForm, SendForm


@staff_member_required
def home(request):
    send_form = SendForm(request.POST if "send" in request.POST else None, prefix="one")
    bulk_form = BulkForm(request.POST if "bulk" in request.POST else None, prefix="bulk")
    if request.method == "POST":
        if "send" in request.POST and send_form.is_valid():
            return send_one(request, send_form.cleaned_data)
        if "bulk" in request.POST and bulk_form.is_valid():
            return send_many(request, bulk_form)
    recent = SmsMessage.objects.select_related("batch").order_by("-pk")[:20]
    return render(
        request,
        "demo/home.html",
        {"send_form": send_form, "bulk_form": bulk_form, "recent": recent},
    )


def send_one(request, data):
    try:
        message = send_sms(data["number"], data["message"], channel=data["channel"])
    except ValidationError as exc:
        messages.error(request, "; ".join(exc.messages))
    except GatewayError as exc:
        messages.error(request, f"Not sent: {exc.reason}")
    else:
        messages.success(request, f"Sent to {message.number}: sending id {message.sending_id}")
    return redirect(reverse("demo:home"))


def send_many(request, form):
    try:
        batch = send_bulk(form.items(), channel=form.cleaned_data["channel"])
    except GatewayError as exc:
        messages.error(request, f"Batch stopped: {exc.reason}")
    else:
        messages.success(
            request,
            f"Batch #{batch.pk}: {batch.accepted_count} accepted, "
            f"{batch.rejected_count} rejected, {batch.failed_count + batch.unknown_count} failed",
        )
    return redirect(reverse("demo:home"))
