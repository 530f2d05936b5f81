# ksmbd-embedded: `make run` serves a development share, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 4445

.PHONY: setup run test test-deps unit e2e bench lint clean ipk

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,bench]'
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

test: setup test-deps
	$(BIN)/python -m pytest -q tests

unit: setup
	$(BIN)/python -m pytest -q tests/unit

e2e: setup test-deps
	$(BIN)/python -m pytest -q tests/e2e tests/conformance

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

# OpenWrt packages (ksmbd-embedded + luci-app-ksmbd-embedded .ipk and a feed index) in build/ipk.
ipk: setup
	$(BIN)/python scripts/build-ipk

clean:
	rm -rf $(VENV) run share build .pytest_cache
