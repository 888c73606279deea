#!/usr/bin/env bash
# Installs what the tests need and runs every test against real mosquitto, influxd and ptys.
# Ends with one line "tests: N passed, N failed[, N skipped]"; exits non-zero if anything failed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source deploy/lib/common.sh

ensure_test_dependencies

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
status=0
dotnet test Gateway.sln -c Release --nologo \
  --logger "trx;LogFileName=results.trx" --logger "console;verbosity=normal" \
  --results-directory "$results" || status=$?

trx="$results/results.trx"
if [ ! -f "$trx" ]; then
  echo "tests: 0 passed, 1 failed (no test results were written; the build or the test host failed)"
  exit 1
fi
counter() { grep -o "<Counters [^>]*" "$trx" | grep -o " $1=\"[0-9]*\"" | grep -o "[0-9]\+"; }
total=$(counter total); passed=$(counter passed); failed=$(counter failed)
errors=$(counter error); timeouts=$(counter timeout); aborted=$(counter aborted)
skipped=$(counter notExecuted)
failed=$((failed + errors + timeouts + aborted))
line="tests: $passed passed, $failed failed"
[ "$skipped" -gt 0 ] && line="$line, $skipped skipped"
echo "$line"
if [ "$failed" -gt 0 ] || [ "$status" -ne 0 ] || [ "$total" -eq 0 ]; then
  exit 1
fi
