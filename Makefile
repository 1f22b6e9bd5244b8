# `make demo` and `make test` each create .venv and install what they need.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_PORT ?= 8000
SIMULATOR_PORT ?= 8787

.PHONY: install test lint demo demo-batch benchmark clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,celery]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check django_smsgw tests example_project benchmarks

test: lint
	$(BIN)/python -m pytest

# Interactive: the simulator plus the example project; log in to the admin it prints.
demo: $(STAMP)
	SIMULATOR_PORT=$(SIMULATOR_PORT) DEMO_PORT=$(DEMO_PORT) $(BIN)/python example_project/manage.py demo --serve

# Non-interactive: send a batch end to end through the simulator and print a summary.
demo-batch: $(STAMP)
	$(BIN)/python example_project/manage.py demo

benchmark: $(STAMP)
	$(BIN)/python benchmarks/bulk_send.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache example_project/db.sqlite3
