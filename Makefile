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

run: setup
	@mkdir -p share/public share/private run
	@test -f run/ksmbdpwd.db || printf 'alice\n' | \
	  $(BIN)/ksmbd-embedded user add alice --pwddb run/ksmbdpwd.db --password-stdin
	@echo "Serving //127.0.0.1/public (guest) and //127.0.0.1/private (user alice, password alice) on port $(PORT)."
	@echo "Try:  smbclient -L //127.0.0.1 -p $(PORT) -N"
	@echo "      smbclient //127.0.0.1/public -p $(PORT) -N -c ls"
	@echo "      smbclient //127.0.0.1/private -p $(PORT) -U alice%alice"
	@echo "Stop with Ctrl-C."
	$(BIN)/ksmbd-embedded serve --config dev/ksmbd.uci --pwddb run/ksmbdpwd.db --port $(PORT) --ubus-socket ""  # no ubusd off OpenWrt

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

# OpenWrt packages (ksmbd-embedded + luci-app-ksmbd-embedded .ipk and a feed index) in build/ipk.
ipk: setup
	$(BIN)/python scripts/build-ipk

clean:
	rm -rf $(VENV) run share build .pytest_cache
