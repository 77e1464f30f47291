# `make run` and `make test` each build .venv on their own, so either works first on a fresh clone.
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test lint chromium postgresql

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.run-deps: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.test-deps: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.run-deps

# The bot with $$TELEGRAM_BOT_TOKEN; without one, the local playground on http://127.0.0.1:8080
run: $(VENV)/.run-deps
	$(PY) -m bot

lint: $(VENV)/.test-deps
	$(VENV)/bin/ruff check .

# The browser test drives Debian's Chromium; without root to install it, that one test skips.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium is not installed: the browser test will skip"

# The tests start a PostgreSQL server of their own with Debian's programs; without root to
# install them, the tests on PostgreSQL skip (and fail in CI, see .ci/run).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		(apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || \
		echo "PostgreSQL is not installed: the tests on PostgreSQL will skip"

test: lint chromium postgresql
	$(PY) -m pytest
