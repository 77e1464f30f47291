# `make run` and `make test` each build .venv on their own, so either works first on a fresh clone.
VENV := .venv
PY := $(VENV)/bin/python
SHARED := ../shared/datasets

.PHONY: run test lint

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.run-deps

run: $(VENV)/.run-deps
	$(PY) scripts/classify.py $(if $(wildcard $(SHARED)),$(SHARED)/imagenet-dogs-121,tests/photos)

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest
