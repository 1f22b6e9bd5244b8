#!/usr/bin/env python
import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run from anywhere: the example project's folder and the repository root (the app).
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
