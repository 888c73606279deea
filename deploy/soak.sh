#!/usr/bin/env bash
# Runs the fault tests with the long settings (20 gateway kills) and prints their figures:
# published vs stored, lost, duplicates, peak RSS. Takes about 5 minutes. Needs what
# deploy/test.sh installs.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source deploy/lib/common.sh
ensure_test_dependencies
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
GATEWAY_FAULT_KILLS=${GATEWAY_FAULT_KILLS:-20} dotnet test tests/Gateway.Tests -c Release --nologo \
  --filter "FullyQualifiedName~CityGateway.Tests.Faults|FullyQualifiedName~HostileInput" \
  --logger "console;verbosity=detailed" >"$log" 2>&1 || status=$?
grep -E "^\s+(Passed|Failed) CityGateway|published|restarts took|InfluxDB down|bound [0-9]|SIGTERM to exit|peak RSS|hostile" "$log" | sed 's/^ *//'
[ $status -eq 0 ] || { echo "soak: FAILED (see the output above)"; grep -A15 "Error Message" "$log" | head -60; }
exit $status
