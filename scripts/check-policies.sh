#!/usr/bin/env bash
# The policy author's gate, run by `make test`: strict check, formatting,
# lint, and the Rego unit tests with at least 90 % coverage.
set -euo pipefail
cd "$(dirname "$0")/.."
opa check --strict rego/
unformatted=$(opa fmt --list rego/)
if [ -n "$unformatted" ]; then
  echo "opa fmt would change these files (run 'opa fmt -w rego/'):" >&2
  echo "$unformatted" >&2
  exit 1
fi
regal lint rego/
opa test rego/ --coverage --threshold 90 >/dev/null || {
  opa test rego/ -v
  echo "opa test failed or coverage is under 90 %" >&2
  exit 1
}
opa test rego/
