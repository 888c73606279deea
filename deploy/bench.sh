#!/usr/bin/env bash
# Benchmarks against real services on this machine; prints medians over repeated runs.
#   deploy/bench.sh pipeline [--runs N] [--ms N] [--devices N] [--format F]
#   deploy/bench.sh serial  [--runs N] [--lines N] [--seconds S]
#   deploy/bench.sh e2e [--runs N] [--messages N] [--devices N] [--warmup N] [--qos 0,1] [--cases abcd]
#                       [--posters N] [--batch N] [--timeout S] [--stall S] [--seed N] [--node-red-dir DIR]
#                       [--sample] [--trace] [--baseline COMMIT]
#     --baseline builds the gateway of COMMIT (git archive, into ~/.cache/city-gateway-bench/baseline)
#     and runs it as case o after each case c, with the same settings and load.
#     e2e installs node-red with npm into ~/.cache/city-gateway-bench/node-red (outside the repository)
#     on its first run; it needs node and npm for case d.
#   deploy/bench.sh latency [--runs N] [--seconds S] [--rate MSG_PER_S] [--flush-ms MS[,MS...]] [--poll-ms MS]
#   deploy/bench.sh memory  [--runs N] [--seconds S] [--devices N] [--active N] [--rate MSG_PER_S] [--trace] [--baseline COMMIT]
#   deploy/bench.sh journal [--runs N] [--seconds S] [--rate FRAMES_PER_S] [--payload BYTES]
#     journal needs no services: it measures the Fsync policies on the disk under a temporary folder.
#   deploy/bench.sh encode  [--runs N] [--ms N]
#     encode compares line-protocol encoding with the InfluxDB client libraries, then writes with each to influxd 1.6.
# The service benchmarks start their own mosquitto and influxd on free loopback ports with data in
# temporary folders, and the gateway as its own process with its default settings. Needs what
# deploy/test.sh installs. Not part of CI. README.md, "Benchmarks", says what each measures and what it found.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source deploy/lib/common.sh
[ "${1:-}" = journal ] || ensure_test_dependencies
# The end-to-end benchmark's case (a) subscribes with mosquitto_sub.
if [ "${1:-}" = e2e ]; then ensure_packages mosquitto-clients; fi
# A baseline from before the gateway moved to MQTTnet binds libmosquitto.
if [[ " $* " == *" --baseline "* ]]; then ensure_packages libmosquitto1; fi
[ $# -ge 1 ] || { echo "usage: $0 pipeline|serial|e2e|latency|memory|journal|encode [options]" >&2; exit 2; }
dotnet build tests/Gateway.Benchmarks -c Release --nologo -v quiet >/dev/null
exec dotnet tests/Gateway.Benchmarks/bin/Release/net10.0/Gateway.Benchmarks.dll "$@"
