# One entry point for developers and CI. `make help` lists the targets.
# Everything runs from .venv, created on first use from the pinned requirements.txt.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MPY    := $(VENV)/bin/micropython
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help venv test bench demo

help:
	@echo "make demo    simulated hotel corridor: air, five locks, host provisioner"
	@echo "make test    the whole suite (MicroPython unix port + CPython oracles + static checks)"
	@echo "make bench   benchmarks; figures go to docs/performance.md by hand"

# The venv is rebuilt only when requirements.txt changes: a second `make test` starts in seconds.
$(STAMP): requirements.txt
	@echo "== creating $(VENV) with pinned tools (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

venv: $(STAMP)

test: $(STAMP)
	@echo "== pytest: portable tests under micropython and CPython, oracle tests, tools"
	$(PY) -m pytest -q

bench: $(STAMP)
	@echo "== benchmarks (figures are ratios measured side by side; see docs/performance.md)"
	$(PY) tools/bench.py

demo: $(STAMP)
	$(PY) tools/bench.py
