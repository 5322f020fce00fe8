# Two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
ARBITER_TOOLS ?= $(HOME)/.cache/arbiter-tools
export ARBITER_TOOLS
export PATH := $(CURDIR)/$(BIN):$(ARBITER_TOOLS)/bin:/usr/lib/postgresql/15/bin:$(PATH)

.PHONY: run test lint typecheck policy-check pytest bench tools venv clean

$(BIN)/.installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

venv: $(BIN)/.installed

## Start the server on the embedded defaults (SQLite, filesystem blobs, in-process Rego).
run: venv
	$(BIN)/arbiter serve

## Install everything the tests need, then run them all.
test: venv tools lint typecheck policy-check pytest

tools:
	scripts/install-tools.sh

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

policy-check: venv tools
	scripts/check-policies.sh

pytest: venv tools
	$(BIN)/pytest

bench: venv tools
	$(BIN)/pip install -q -e '.[test,bench]'
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var test-artifacts
