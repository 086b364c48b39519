# aggregator: `make run` runs the daemon on the default config; `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONFIG ?= config/aggregator.toml

.PHONY: run once test lint bench bench-tools clean help

help:
	@echo "make run    install into .venv and run the daemon on $(CONFIG) (Ctrl-C stops it)"
	@echo "make once   one cycle: ingest, cluster, publish, exit"
	@echo "make test   install with test extras and run the whole test suite"
	@echo "make lint   ruff, mypy and the layers contract (lint-imports)"
	@echo "make bench  throughput figures of every stage"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/aggregator --config $(CONFIG) run

once: $(VENV)/.installed
	$(BIN)/aggregator --config $(CONFIG) run --once

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check aggregator tests
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed bench-tools
	$(BIN)/python bench/run.py
	$(BIN)/python bench/daemon.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/story.py

# wrk, the HTTP load generator bench/serve.py measures the server with (Debian's package);
# without root or sudo it says how to get it, and serve.py prints no figure
bench-tools:
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y wrk || { apt-get update && apt-get install -y wrk; }; \
	  elif command -v sudo >/dev/null; then sudo apt-get install -y wrk; \
	  else echo "wrk not found: install it (apt-get install -y wrk) for the serving figures"; fi; }

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
