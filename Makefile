# Two entry points for a fresh machine: `make run` and `make test`.
# Each creates .venv on first use and installs what it needs from pyproject.toml.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test test-fast bench clean

$(BIN)/trionats: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(BIN)/trionats
	$(BIN)/trionats $(ARGS)

test: $(BIN)/trionats
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(BIN)/trionats
	$(BIN)/python -m pytest -m 'not slow' $(PYTEST_ARGS)

bench: $(BIN)/trionats
	$(BIN)/python benchmarks/bench.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info
