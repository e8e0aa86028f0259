#!/usr/bin/env bash
# Sets up .venv with the test extra and runs the whole test suite, offline.
#   ./scripts/test.sh [pytest args]      e.g. -m "not slow" for the fast subset
# Then, unless SKIP_WHEEL_CHECK=1, scripts/wheel_check.sh: the built wheel installed into a fresh
# venv outside the checkout runs a tiny ingest -> train -> export -> infer (CI runs both).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/venv.sh" test
cd "$root"
# A throwaway HOME: Beam's DirectRunner would cache a downloaded Prism binary under
# ~/.apache_beam; we check below that nothing tried.
test_home="$(mktemp -d)"
trap 'rm -rf "$test_home"' EXIT
status=0
HOME="$test_home" TF_CPP_MIN_LOG_LEVEL=2 "$root/.venv/bin/python" -m pytest "$@" || status=$?
if [ -e "$test_home/.apache_beam/cache/prism" ]; then
  echo "FAIL: a test tried to download Beam's Prism runner ($test_home/.apache_beam/cache/prism exists)." >&2
  exit 1
fi
if [ "$status" -eq 0 ] && [ "${SKIP_WHEEL_CHECK:-0}" != 1 ]; then
  bash "$root/scripts/wheel_check.sh" || status=$?
fi
exit "$status"
