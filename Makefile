# ksmbd-embedded: `make run` serves a development share, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 4445
# OpenWrt 24.10 ships Python 3.11, 25.12 Python 3.13: `make test` runs the unit and end-to-end
# suites under both, the 3.13 run in a second venv made from PYTHON313.  Default: the first
# that runs of python3.13 on PATH and pyenv's 3.13.x (a pyenv shim of a version that is not
# selected is on PATH, but fails).
VENV313 := .venv-py3.13
BIN313 := $(VENV313)/bin
PY313_CANDIDATES = python3.13 $(sort $(wildcard $(addsuffix /versions/3.13*/bin/python3.13,\
  $(PYENV_ROOT) $(HOME)/.pyenv /root/.pyenv)))
PYTHON313 ?= $(shell for p in $(PY313_CANDIDATES); do \
  "$$p" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null \
  && { command -v "$$p"; break; }; done)

.PHONY: setup setup-py313 run test test-deps unit e2e bench lint clean ipk apk packages startup

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	touch $@

# The 3.13 venv, installed as .venv is; no Python 3.13 is an error, not a skipped run.
setup-py313: $(VENV313)/.installed

$(VENV313)/.installed: pyproject.toml
	@test -x $(BIN313)/python && exit 0; py='$(PYTHON313)'; \
	if [ -z "$$py" ]; then \
	  echo "error: no Python 3.13 found (make test runs the suites under 3.11 and 3.13): install python3.13 or point PYTHON313 at one, e.g. make test PYTHON313=/path/to/python3.13" >&2; \
	  exit 1; \
	fi; \
	"$$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null || { \
	  echo "error: PYTHON313=$$py is not a working Python 3.13: point PYTHON313 at a python3.13" >&2; \
	  exit 1; }; \
	echo "$$py -m venv $(VENV313)"; "$$py" -m venv $(VENV313)
	$(BIN313)/python -m pip install -q --upgrade pip
	$(BIN313)/python -m pip install -q -e '.[test,bench]'
	touch $@

# The hints are printed by the server itself (--ready-message) once it listens: a port in use
# gives one error line and no "Serving".  No ubusd off OpenWrt: --ubus-socket "".
run: setup
	@mkdir -p share/public share/private run
	@test -f run/ksmbdpwd.db || printf 'alice\n' | \
	  $(BIN)/ksmbd-embedded user add alice --pwddb run/ksmbdpwd.db --password-stdin
	@$(BIN)/ksmbd-embedded serve --config dev/ksmbd.uci --pwddb run/ksmbdpwd.db --port $(PORT) --ubus-socket "" \
	  --ready-message "Serving //127.0.0.1/public (guest) and //127.0.0.1/private (user alice, password alice) on port $(PORT)." \
	  --ready-message "Try:  smbclient -L //127.0.0.1 -p $(PORT) -N" \
	  --ready-message "      smbclient //127.0.0.1/public -p $(PORT) -N -c ls" \
	  --ready-message "      smbclient //127.0.0.1/private -p $(PORT) -U alice%alice" \
	  --ready-message "Stop with Ctrl-C."

test-deps:
	@scripts/install-test-deps

# One interpreter's pytest run after a header naming it: $(call pytest_in,VENV,WHAT,ARGS).
# In one shell line with the others of its target: failed tests (pytest's status 1) are
# noted and the next interpreter still runs, the target failing at the end; any other
# status (interrupted, usage error) stops at once.  The 3.13 runs keep out of .pytest_cache
# (-p no:cacheprovider), so --lf stays the 3.11 run's.
pytest_in = v=$$($(1)/bin/python -V); echo; echo "==== $$v ($(1)): $(2) ===="; \
  $(1)/bin/python -m pytest -q $(3) || { s=$$?; [ $$s = 1 ] || exit $$s; failed="$$failed, $$v"; }
tests_failed = if [ -n "$$failed" ]; then echo "make $@: tests failed under$${failed\#,}" >&2; exit 1; fi

# The whole suite under 3.11, then the unit and end-to-end suites under 3.13.
test: setup setup-py313 test-deps
	@failed=""; \
	$(call pytest_in,$(VENV),the whole suite,tests); \
	$(call pytest_in,$(VENV313),unit and end-to-end suites,-p no:cacheprovider tests/unit tests/e2e); \
	$(tests_failed)

unit: setup setup-py313
	@failed=""; \
	$(call pytest_in,$(VENV),unit suite,tests/unit); \
	$(call pytest_in,$(VENV313),unit suite,-p no:cacheprovider tests/unit); \
	$(tests_failed)

e2e: setup setup-py313 test-deps
	@failed=""; \
	$(call pytest_in,$(VENV),end-to-end and conformance suites,tests/e2e tests/conformance); \
	$(call pytest_in,$(VENV313),end-to-end suite,-p no:cacheprovider tests/e2e); \
	$(tests_failed)

# ksmbd-embedded vs Samba smbd (installed if missing): table, bench/results.json, bench/results.png.
# BENCH_ARGS e.g. '--smoke', '--rounds 5', '--only read memory'.
bench: setup test-deps
	$(BIN)/python scripts/bench $(BENCH_ARGS)

# The project's mutation fuzzer (scripts/fuzz): 20,000 cases or 10 minutes, whichever comes
# first; new findings go to tests/fuzz/corpus/, which `make test` replays.
# FUZZ_ARGS e.g. '--seed 7', '--count 500 --seconds 60', '--replay'.
.PHONY: fuzz
fuzz: setup
	$(BIN)/python scripts/fuzz --count 20000 --seconds 600 $(FUZZ_ARGS)

# OpenWrt packages as .ipk (opkg, OpenWrt <= 24.10, Python 3.11) and a feed index in build/ipk.
ipk: setup
	$(BIN)/python scripts/build-ipk

# apk v3 packages (OpenWrt 25.12, modules compiled for Python 3.13) and packages.adb in build/apk;
# `packages` builds both formats (build/ipk, build/apk) from the one description.
apk: setup
	$(BIN)/python scripts/build-packages --format apk --python3.13 "$(PYTHON313)"

packages: setup
	$(BIN)/python scripts/build-packages --python3.13 "$(PYTHON313)"

# Start-up of the packaged server, byte-compiled against sources, for both formats' Python.
startup: setup setup-py313
	$(BIN)/python scripts/measure-startup --python3.13 $(CURDIR)/$(BIN313)/python

clean:
	rm -rf $(VENV) $(VENV313) run share build .pytest_cache
