# Beacon: `make run` starts everything, `make test` checks everything.
# Both create .venv (Python 3.10) and install from the lock when needed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
BEACON  := $(VENV)/bin/beacon
STAMP   := $(VENV)/.installed-stamp
RESULTS := var/test-results
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup run train lint format test test-unit test-e2e validate rasa-test \
        catalogs i18n-extract i18n-update i18n-compile lock browser bench clean

help: ## show this help
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  interpreter="$$(tools/find-python.sh)" || exit 1; \
	  echo "creating $(VENV) with $$interpreter"; \
	  "$$interpreter" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade "pip==24.3.1" "setuptools==70.3.0" "wheel==0.45.1"
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

setup: $(STAMP) i18n-compile ## create .venv, install the locked dependencies, compile catalogs

train: setup ## train the Rasa model if its inputs changed (cached by hash)
	$(BEACON) train

run: train ## start gateway, Rasa and actions on the embedded default (SQLite)
	$(BEACON) up

lint: setup ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup ## format the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

validate: setup ## rasa data validate
	$(VENV)/bin/rasa data validate --domain domain.yml --data data/nlu data/core

browser: ## install Debian's chromium for the browser tests, if missing
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package) for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# pytest exits 5 when it collects no test: that is a failure here, like any non-zero exit.
test-unit: setup ## pytest without the end-to-end tests
	$(VENV)/bin/pytest -m "not e2e" -q

test-e2e: train browser ## the end-to-end tests (real gateway, Rasa, actions, Chromium)
	BEACON_REQUIRE_BROWSER=1 $(VENV)/bin/pytest -m e2e -q

rasa-test: train ## rasa test on the test stories, failing on any prediction error
	$(VENV)/bin/rasa test core --model "$$($(BEACON) model-path)" --stories tests/stories \
	  --fail-on-prediction-errors --out $(RESULTS)/rasa --no-plot

test: lint validate train browser ## everything CI runs: lint, validate, train, pytest, rasa test
	BEACON_REQUIRE_BROWSER=1 $(VENV)/bin/pytest -q
	$(MAKE) --no-print-directory rasa-test

i18n-extract: $(STAMP) ## extract source strings into locales/messages.pot
	$(VENV)/bin/pybabel extract -F babel.cfg -o locales/messages.pot --no-wrap --sort-by-file \
	  --project=Beacon --version=0.1 --copyright-holder="Beacon contributors" \
	  --msgid-bugs-address=none .

i18n-update: i18n-extract ## merge the template into every catalog (new strings become untranslated)
	$(VENV)/bin/pybabel update -i locales/messages.pot -d locales --no-wrap --ignore-obsolete --no-fuzzy-matching

i18n-compile: $(STAMP) ## compile catalogs (.po -> .mo); .mo files are never edited or committed
	@$(VENV)/bin/pybabel compile -d locales --statistics 2>&1 | grep -v '^compiling' || true

catalogs: i18n-update i18n-compile ## extract, update and compile the catalogs

lock: $(STAMP) ## regenerate constraints.txt from the installed .venv
	{ echo "# Full lock of the .venv for Python 3.10 (pip freeze), used as constraints so"; \
	  echo "# that no transitive dependency floats (numpy 2, rasa-sdk 3.21, jax backtracking)."; \
	  echo "# Regenerate with: make lock"; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^beacon'; echo "jaxlib==0.4.13"; } > constraints.txt

bench: setup ## CLI start-up benchmark (see docs/benchmarks.md)
	$(PY) bench/cli_startup.py

clean: ## remove the venv, models, databases and caches under the checkout
	rm -rf $(VENV) models var .mypy_cache .ruff_cache .pytest_cache results
