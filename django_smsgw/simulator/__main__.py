"""`python -m django_smsgw.simulator --help`"""

from __future__ import annotations

import logging
import sys

from .cli import build_parser, serve_until_signalled, simulator_from_options


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    simulator = simulator_from_options(vars(options))
    serve_until_signalled(simulator, announce=_announce)
    return 0


def _announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
