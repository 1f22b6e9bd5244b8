"""`manage.py smsgw_simulator`: the provider simulator, with the options of
`python -m django_smsgw.simulator`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_smsgw.simulator.cli import add_arguments, serve_until_signalled, simulator_from_options


class Command(BaseCommand):
    help = "Run a simulator of the SMS gateway provider until Ctrl-C or SIGTERM."

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        serve_until_signalled(simulator_from_options(options), announce=self.stdout.write)
