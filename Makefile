# batchtop — two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test

.PHONY: demo test lint unit bench screenshots clean venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	touch $@

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(VENV)/.installed $@

venv: $(STAMP)

demo: $(VENV)/.installed
	$(BIN)/batchtop --demo

lint: $(STAMP)
	$(BIN)/ruff check tui tests bench
	$(BIN)/mypy --strict tui

unit: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint unit

bench: $(STAMP)
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

screenshots: $(STAMP)
	$(BIN)/python -m tui.ui.screenshots screenshots

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
