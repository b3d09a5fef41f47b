# Two entry points (README.md): `make demo` and `make test`. Both set up .venv from scratch when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test install
demo: install
	$(BIN)/mcodec demo

test: install
	$(BIN)/pytest

# Dependencies once (pinned in pyproject.toml), then mcodec itself, reinstalled each time so the
# installed package (with its shipped weights and samples) is what runs and is tested.
$(VENV)/.deps: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q ".[test]"
	touch $@

install: $(VENV)/.deps
	$(BIN)/pip install -q --no-deps --force-reinstall .
