#!/usr/bin/env bash
# The policy author's gate, run by `make test`: strict check, formatting,
# lint, and the Rego unit tests with at least 90 % coverage, for rego/ and for
# the test fixture policies the Python tests load.
set -euo pipefail
cd "$(dirname "$0")/.."

fixtures=(tests/policies/fixtures/deny_all tests/policies/fixtures/allow_all)

opa check --strict rego/
for fixture in "${fixtures[@]}"; do opa check --strict "$fixture"; done

unformatted=$(opa fmt --list rego/ "${fixtures[@]}")
if [ -n "$unformatted" ]; then
  echo "opa fmt would change these files (run 'opa fmt -w rego/'):" >&2
  echo "$unformatted" >&2
  exit 1
fi

if command -v regal >/dev/null 2>&1; then
  regal lint rego/
else
  # Not a substitute for regal's style rules: only the checks opa itself has
  # (strict compile and formatting, both above). Said out loud, never faked.
  echo "check-policies: regal is not installed (see scripts/install-tools.sh);" \
    "lint limited to 'opa check --strict' and 'opa fmt'" >&2
fi

if ! opa test rego/ --coverage --threshold 90 >/dev/null; then
  opa test rego/ -v || true
  echo "opa test failed or coverage is under 90 %" >&2
  exit 1
fi
opa test rego/
