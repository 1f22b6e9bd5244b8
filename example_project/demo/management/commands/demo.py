"""`manage.py demo`: the whole path end to end against the built-in provider simulator.

Without options: migrate, start the simulator and this project's web server (for delivery
callbacks) in the background, send a bulk batch and an OTP, wait for the delivery reports,
print a summary; exit status 0 when every message ended as expected. With --serve: the same
simulator plus `runserver`, for a person to use the demo page and the admin.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application

from django_smsgw import check_balance, send_bulk, send_sms
from django_smsgw.models import FINAL_STATUSES, SmsMessage, Status
from django_smsgw.simulator import Simulator

API_KEY = "demo-api-key"
SECRET = "demo-secret"
# Numbers ending in 99 are "Delivered Error" at the simulator: the demo shows both fates.
UNDELIVERED_SUFFIX = "99"
ADMIN_USER, ADMIN_PASSWORD = "admin", "admin"


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # the summary says what matters
        pass


class Command(BaseCommand):
    help = "Run the django-smsgw demo against the built-in provider simulator."

    def add_arguments(self, parser):
        parser.add_argument("--serve", action="store_true", help="Interactive: run the site.")
        parser.add_argument("--count", type=int, default=50, help="Messages in the demo batch.")
        parser.add_argument(
            "--timeout", type=float, default=30, help="Seconds to wait for reports."
        )

    def handle(self, *args, serve=False, count=50, timeout=30.0, **options):
        call_command("migrate", verbosity=0, interactive=False)
        if serve:
            return self.serve()
        if count < 1:
            raise CommandError("--count must be at least 1")
        return self.run_batch(count, timeout)

    def configure(self, simulator: Simulator, site_url: str) -> None:
        settings.SMSGW = {
            **settings.SMSGW,
            "API_KEY": API_KEY,
            "BASE_URL": simulator.base_url,
            "BACKEND": "django_smsgw.backends.http.HttpBackend",
            "CALLBACK_URL": f"{site_url}/smsgw/callback/{SECRET}/",
            "CALLBACK_SECRET": [SECRET],
        }

    def serve(self):
        host = "127.0.0.1"
        port = int(os.environ.get("DEMO_PORT", "8000"))
        simulator_port = int(os.environ.get("SIMULATOR_PORT", "8787"))
        user_model = get_user_model()
        if not user_model.objects.filter(username=ADMIN_USER).exists():
            user_model.objects.create_superuser(ADMIN_USER, "admin@example.com", ADMIN_PASSWORD)
        simulator = Simulator(
            api_key=API_KEY,
            port=simulator_port,
            callback_delay=2.0,
            delivery_outcomes={UNDELIVERED_SUFFIX: 4},
        ).start()
        self.configure(simulator, f"http://{host}:{port}")
        self.stdout.write(
            self.style.SUCCESS(
                f"\nProvider simulator: {simulator.base_url} (API key {API_KEY})\n"
                f"Demo page:          http://{host}:{port}/\n"
                f"Admin:              http://{host}:{port}/admin/  "
                f"user {ADMIN_USER!r}, password {ADMIN_PASSWORD!r}\n"
                "Numbers ending in 99 come back 'Delivered Error'. Ctrl-C stops.\n"
            )
        )
        try:
            call_command("runserver", f"{host}:{port}", use_reloader=False)
        finally:
            simulator.stop()

    def run_batch(self, count: int, timeout: float) -> None:
        site = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler)
        site.set_app(get_wsgi_application())
        threading.Thread(target=site.serve_forever, daemon=True).start()
        site_url = f"http://127.0.0.1:{site.server_address[1]}"
        simulator = Simulator(
            api_key=API_KEY, callback_delay=0.2, delivery_outcomes={UNDELIVERED_SUFFIX: 4}
        ).start()
        try:
            self.configure(simulator, site_url)
            return self.send_and_report(simulator, count, timeout)
        finally:
            simulator.stop()
            site.shutdown()
            site.server_close()

    def send_and_report(self, simulator: Simulator, count: int, timeout: float) -> None:
        started = time.monotonic()
        before = check_balance("reguler").balance
        rng = random.Random(count)
        items = [
            (f"0812{rng.randrange(10**7, 10**8)}", f"Halo pelanggan {i}") for i in range(count)
        ]
        items[0] = ("0812345678" + UNDELIVERED_SUFFIX, "Halo: this one will not be delivered")
        items.append(("021 3456789", "a landline: rejected before sending"))
        batch = send_bulk(items, channel="reguler")
        otp = send_sms("0857-1234-5678", "Kode OTP Anda 123456", channel="otp")
        ids = [*batch.messages.values_list("pk", flat=True), otp.pk]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pending = SmsMessage.objects.filter(pk__in=ids).exclude(status__in=FINAL_STATUSES)
            if not pending.exists():
                break
            time.sleep(0.1)
        after = check_balance("reguler").balance
        statuses = Counter(SmsMessage.objects.filter(pk__in=ids).values_list("status", flat=True))
        batch.refresh_from_db()
        self.stdout.write(
            f"batch #{batch.pk}: {batch.total_count} messages, {len(batch.requests)} provider "
            f"request(s); accepted {batch.accepted_count}, rejected {batch.rejected_count}, "
            f"failed {batch.failed_count}, unknown {batch.unknown_count}"
        )
        self.stdout.write(f"otp message #{otp.pk}: sending id {otp.sending_id}")
        self.stdout.write(
            "final statuses: "
            + ", ".join(f"{status} {statuses[status]}" for status in sorted(statuses))
        )
        self.stdout.write(
            f"delivery reports received: {simulator.state()['callbacks_posted']} POST(s)"
        )
        self.stdout.write(f"reguler balance: {before} -> {after}")
        self.stdout.write(f"took {time.monotonic() - started:.1f} s")
        expected = Counter({Status.DELIVERED: count, Status.UNDELIVERED: 1, Status.REJECTED: 1})
        if statuses != expected:
            raise CommandError(f"unexpected outcome: {dict(statuses)} (expected {dict(expected)})")
        self.stdout.write(self.style.SUCCESS("demo OK"))
