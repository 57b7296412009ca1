# Quick start: `make demo` (set up and run the demo), `make test` (set up and run every check).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# Exact versions for every install (pip constraints: plain pip reads them, no tool needed);
# `make lock` regenerates requirements/*.txt from pyproject.toml with uv.
LOCK := requirements/dev.txt
UV ?= uv

.PHONY: demo test lint security audit pytest test-host format clean lock bench bench-short scenarios

$(VENV)/.base-installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]'
	touch $(VENV)/.base-installed $@

demo: $(VENV)/.base-installed
	$(BIN)/atm demo --script withdraw-alice

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Security review of the shipped code, offline: bandit (settings in pyproject.toml [tool.bandit]).
security: $(VENV)/.dev-installed
	$(BIN)/bandit -q -c pyproject.toml -r atm device drivers host protocol simulators webpanel scripts

# Known vulnerabilities in the image's pinned dependencies (pip-audit, own virtualenv
# .venv-audit). Needs PyPI: under CI=true it must run; elsewhere, offline, it says so and passes.
audit: $(VENV)/.dev-installed
	$(BIN)/python scripts/audit_deps.py requirements/runtime.txt

pytest: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Offline checks of the Dockerfile, compose file, workflows and Terraform (own virtualenv).
deploy-check: $(VENV)/.dev-installed
	APP_PYTHON=$(BIN)/python scripts/validate_deploy.sh

test: lint security audit pytest deploy-check

# The full scenario catalogue, 300 random sessions, and random sessions with the ATM process
# killed at random steps (run by .ci/run after `make test`).
scenarios: $(VENV)/.dev-installed
	$(BIN)/atm scenario run tests/scenarios atm/scenario/builtin -j 2 --timeout 90 --junit var/scenario-junit.xml
	$(BIN)/atm scenario fuzz --seed 7 --sessions 300 --replay-dir var/fuzz-replays
	$(BIN)/atm scenario fuzz --seed 7 --sessions 20 --kills 6 --replay-dir var/fuzz-replays

# The host suite alone (SQLite and a throw-away PostgreSQL cluster the fixtures start).
test-host: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -q tests/host $(PYTEST_ARGS)

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The lock files: requirements/dev.txt (every extra; constraints for make and CI) and
# requirements/runtime.txt (runtime + s3 with hashes; the Docker image installs exactly these),
# resolved for every platform and Python >= 3.11. Needs uv (`pip install uv`); nothing else does.
lock:
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --extra dev --extra s3 \
		--custom-compile-command "make lock" --quiet -o requirements/dev.txt
	$(UV) pip compile pyproject.toml --universal --python-version 3.11 --extra s3 \
		--generate-hashes --constraint requirements/dev.txt \
		--custom-compile-command "make lock" --quiet -o requirements/runtime.txt

# Every benchmark side by side: bench/results/latest.md and latency.png (needs PostgreSQL).
$(VENV)/.bench-installed: $(VENV)/.dev-installed
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.bench-installed
	$(BIN)/python bench/run.py

# CI: the same run with small counts, figures printed, no thresholds.
bench-short: $(VENV)/.bench-installed
	$(BIN)/python bench/run.py --short --out var/bench

clean:
	rm -rf $(VENV) .venv-audit var .pytest_cache .mypy_cache .ruff_cache
