#!/usr/bin/env bash
# Benchmarks against real services on this machine; prints medians over repeated runs.
#   deploy/bench.sh serial [--runs N] [--lines N] [--seconds S]
#   deploy/bench.sh e2e [--runs N] [--messages N] [--devices N] [--warmup N] [--qos 0,1] [--cases abcd]
#                       [--posters N] [--batch N] [--timeout S] [--stall S] [--seed N] [--node-red-dir DIR]
#                       [--sample] [--trace]
#     e2e installs node-red with npm into ~/.cache/city-gateway-bench/node-red (outside the repository)
#     on its first run; it needs node and npm for case d.
# Needs what deploy/test.sh installs. Not part of CI.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source deploy/lib/common.sh
ensure_test_dependencies
[ $# -ge 1 ] || { echo "usage: $0 serial|e2e [options]" >&2; exit 2; }
dotnet build tests/Gateway.Benchmarks -c Release --nologo -v quiet >/dev/null
exec dotnet tests/Gateway.Benchmarks/bin/Release/net10.0/Gateway.Benchmarks.dll "$@"
