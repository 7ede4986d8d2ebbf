# Two entry points for a fresh machine: `make run` and `make test`.
# Each creates .venv on first use and installs what it needs from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast bench bench-recovery clean browser

$(BIN)/trionats: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(BIN)/trionats
	$(BIN)/trionats $(ARGS)

# nats.js for the JavaScript client tests, when node is available.
tests/js/node_modules: tests/js/package.json tests/js/package-lock.json
	@if command -v npm >/dev/null; then cd tests/js && npm ci --no-audit --no-fund --silent; fi

test: $(BIN)/trionats tests/js/node_modules
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(BIN)/trionats tests/js/node_modules
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

# Headless Chromium for tests/test_browser.py (Debian's package; needs root). Without it that
# test is skipped.
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

bench: $(BIN)/trionats
	$(BIN)/python benchmarks/bench.py $(ARGS)

# How soon a killed or stalled node of a 3-node cluster carries messages again (~2.5 min).
bench-recovery: $(BIN)/trionats
	$(BIN)/python benchmarks/recovery.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info tests/js/node_modules
