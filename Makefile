# One entry point for developers, CI and the people with a board. `make help` lists the targets.
# Everything runs from .venv, created on first use from the pinned requirements.txt.
# Board steps (flash, deploy, repl, factory, firmware) are explained in docs/deploy.md.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
MPY    := $(VENV)/bin/micropython
STAMP  := $(VENV)/.installed

# Board-side settings (see docs/deploy.md). Empty means "not given": the tools say what is missing.
PORT        ?=
BOARD       ?= esp32-lock
FIRMWARE    ?=
ERASE       ?= 1
CSV         ?=
LOCK        ?=
MICROPY_DIR ?=
IDF_PATH    ?=
DRY_RUN     ?=
DRY         := $(if $(DRY_RUN),--dry-run,)

.DEFAULT_GOAL := help
.PHONY: help venv test bench demo lint typecheck check build firmware check-patch check-cmodule flash deploy config repl factory clean

help:
	@echo "make demo      simulated hotel corridor: air, five locks, host provisioner"
	@echo "make test      the whole suite (MicroPython unix port + CPython oracles + build + static checks)"
	@echo "make bench     benchmarks; figures go to docs/performance.md by hand"
	@echo "make lint      ruff on everything            make typecheck   mypy vs. the ESP32 stubs"
	@echo "make build     [BOARD=esp32-lock]   mpy-cross lib/ + firmware/ for the ESP32 into build/device, with sizes"
	@echo "make firmware  MICROPY_DIR=... IDF_PATH=...   custom MESH_LOCK firmware (frozen code, NONCONN fix)"
	@echo "make check-patch MICROPY_DIR=...   the NONCONN patch on HCI: unix port + NimBLE vs. a fake controller"
	@echo "make check-cmodule MICROPY_DIR=... the C module _mesh_p256: unix port built with it, crypto tests + bench"
	@echo "make flash     PORT=/dev/ttyUSB0 [FIRMWARE=firmware.bin] [ERASE=0]   esptool erase-flash + write-flash"
	@echo "make deploy    PORT=... [BOARD=esp32-lock]   copy build/device + boards/config/BOARD.json to the board"
	@echo "make config    PORT=... [BOARD=esp32-lock]   copy only the board configuration (MESH_LOCK image)"
	@echo "make repl      PORT=...    MicroPython REPL on the board"
	@echo "make factory   PORT=... CSV=locks.csv LOCK=<id>   write one lock's factory NVS partition"
	@echo "Add DRY_RUN=1 to a board target to print its commands without running them. Details: docs/deploy.md"

# The venv is rebuilt only when requirements.txt changes: a second `make test` starts in seconds.
$(STAMP): requirements.txt
	@echo "== creating $(VENV) with pinned tools (first run only)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r requirements.txt
	@touch $@

venv: $(STAMP)

# The one test command (CI runs exactly this). Static checks and the mpy-cross build are pytest items
# (tests/test_static_checks.py, tests/test_build.py), so there is a single pass/fail and a single summary.
test: $(STAMP)
	@echo "== pytest: portable tests under micropython and CPython, oracle tests, tools, build, static checks"
	$(PY) -m pytest -q

bench: $(STAMP)
	@echo "== benchmarks (figures are ratios measured side by side; see docs/performance.md)"
	$(PY) tools/bench.py

# The simulated hotel corridor (docs/demo.md): air hub, five micropython locks, host provisioner; < 60 s.
demo: $(STAMP)
	@echo "== demo: tools/demo.py (docs/demo.md)"
	$(PY) tools/demo.py

lint: $(STAMP)
	@echo "== ruff check (configuration: pyproject.toml)"
	$(VENV)/bin/ruff check .

typecheck: $(STAMP)
	@echo "== mypy: lib/ and firmware/ against micropython-esp32-stubs; host stand-ins against the same stubs"
	$(PY) tools/typecheck.py

check: lint typecheck

build: $(STAMP)
	$(PY) tools/build.py --board "$(BOARD)"

firmware: $(STAMP)
	$(PY) tools/deploy.py firmware --micropy-dir "$(MICROPY_DIR)" --idf-path "$(IDF_PATH)" $(DRY)

check-patch: $(STAMP)
	$(PY) tools/deploy.py check-patch --micropy-dir "$(MICROPY_DIR)" $(DRY)

check-cmodule: $(STAMP)
	$(PY) tools/deploy.py check-cmodule --micropy-dir "$(MICROPY_DIR)" $(DRY)

flash: $(STAMP)
	$(PY) tools/deploy.py flash --port "$(PORT)" --firmware "$(FIRMWARE)" --erase "$(ERASE)" $(DRY)

deploy: build
	$(PY) tools/deploy.py deploy --port "$(PORT)" $(DRY)

config: build
	$(PY) tools/deploy.py config --port "$(PORT)" $(DRY)

repl: $(STAMP)
	$(PY) tools/deploy.py repl --port "$(PORT)" $(DRY)

factory: $(STAMP)
	$(PY) tools/deploy.py factory --port "$(PORT)" --csv "$(CSV)" --lock "$(LOCK)" $(DRY)

clean:
	rm -rf build
