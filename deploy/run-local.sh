#!/usr/bin/env bash
# Runs the whole stack on this machine: mosquitto, InfluxDB, the gateway and the device
# simulators, on loopback, with data under .local/ in the repository. Ctrl-C stops everything.
#
# Environment (all optional):
#   MQTT_PORT=1883  INFLUX_PORT=8086  INFLUX_RPC_PORT=8088  GATEWAY_PORT=8080 (partner listener)
#   OPERATOR_PORT=8081 (operator listener: /readyz, /metrics, quarantine API)
#   SIM_DEVICES=20 (per domain)  SIM_RATE=50 (messages/s)  SIM_SEED=42  SIM_FORMATS=json,senml,chirpstack,tts
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source deploy/lib/common.sh

MQTT_PORT=${MQTT_PORT:-1883}
INFLUX_PORT=${INFLUX_PORT:-8086}
INFLUX_RPC_PORT=${INFLUX_RPC_PORT:-8088}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
OPERATOR_PORT=${OPERATOR_PORT:-8081}
SIM_DEVICES=${SIM_DEVICES:-20}
SIM_RATE=${SIM_RATE:-50}
SIM_SEED=${SIM_SEED:-42}
SIM_FORMATS=${SIM_FORMATS:-json,senml,chirpstack,tts}
state="$root/.local"
mkdir -p "$state/logs" "$state/mosquitto" "$state/influxdb"

# One stack at a time: a second run says so instead of fighting over ports.
lock="$state/run-local.pid"
if [ -f "$lock" ] && kill -0 "$(cat "$lock")" 2>/dev/null; then
  echo "error: the local stack is already running (pid $(cat "$lock")). Stop it with Ctrl-C in its terminal, or: kill $(cat "$lock")" >&2
  exit 1
fi
for spec in "MQTT_PORT:$MQTT_PORT" "INFLUX_PORT:$INFLUX_PORT" "INFLUX_RPC_PORT:$INFLUX_RPC_PORT" "GATEWAY_PORT:$GATEWAY_PORT" "OPERATOR_PORT:$OPERATOR_PORT"; do
  name=${spec%%:*}; port=${spec#*:}
  if port_in_use "$port"; then
    echo "error: port $port ($name) is already in use on 127.0.0.1. Stop what uses it, or choose another: $name=<port> $0" >&2
    exit 1
  fi
done
echo $$ > "$lock"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "Stopping the local stack..."
  # One at a time, newest first, each waited for: the gateway writes what it holds before
  # InfluxDB and the broker go away.
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  rm -f "$lock"
  echo "Stopped. Data is kept in $state (delete it for a fresh start)."
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

ensure_dotnet
ensure_packages mosquitto libmosquitto1 influxdb

echo "Building the gateway and the simulators..."
dotnet build "$root/gateway/Gateway.csproj" -c Release --nologo -v quiet -o "$state/bin/gateway" >"$state/logs/build.log" 2>&1 \
  || { echo "error: build failed, see $state/logs/build.log" >&2; exit 1; }
dotnet build "$root/simulators/Simulators.csproj" -c Release --nologo -v quiet -o "$state/bin/simulators" >>"$state/logs/build.log" 2>&1 \
  || { echo "error: build failed, see $state/logs/build.log" >&2; exit 1; }

sed -e "s|@PORT@|$MQTT_PORT|g" -e "s|@DATA@|$state/mosquitto|g" -e "s|@USER@|$(id -un)|g" \
  deploy/mosquitto/local.conf.template > "$state/mosquitto/mosquitto.conf"
mosquitto -c "$state/mosquitto/mosquitto.conf" >"$state/logs/mosquitto.log" 2>&1 &
pids+=($!)

sed -e "s|@DATA@|$state/influxdb|g" -e "s|@HTTP_PORT@|$INFLUX_PORT|g" -e "s|@RPC_PORT@|$INFLUX_RPC_PORT|g" \
  deploy/influxdb/influxdb.conf.template > "$state/influxdb/influxdb.conf"
influxd -config "$state/influxdb/influxdb.conf" >"$state/logs/influxdb.log" 2>&1 &
pids+=($!)

wait_for_port "$MQTT_PORT" 15 || { echo "error: mosquitto did not start, see $state/logs/mosquitto.log" >&2; exit 1; }
wait_for_port "$INFLUX_PORT" 30 || { echo "error: InfluxDB did not start, see $state/logs/influxdb.log" >&2; exit 1; }

sim=(dotnet "$state/bin/simulators/Simulators.dll" --broker "mqtt://127.0.0.1:$MQTT_PORT"
     --traffic "$SIM_DEVICES" --water "$SIM_DEVICES" --environment "$SIM_DEVICES"
     --formats "$SIM_FORMATS" --seed "$SIM_SEED" --registry "$state/devices.json")
"${sim[@]}" --registry-only >"$state/logs/simulators.log" 2>&1 \
  || { echo "error: the simulators could not write the device registry, see $state/logs/simulators.log" >&2; exit 1; }

(cd "$state" && exec dotnet "$state/bin/gateway/Gateway.dll" --urls "http://127.0.0.1:$GATEWAY_PORT" \
  --Gateway:Operations:Listen="http://127.0.0.1:$OPERATOR_PORT" \
  --Gateway:Mqtt:Url="mqtt://127.0.0.1:$MQTT_PORT" \
  --Gateway:Influx:Url="http://127.0.0.1:$INFLUX_PORT" \
  --Gateway:Registry:Path="$state/devices.json" \
  --Gateway:Quarantine:Path="$state/quarantine.jsonl") >"$state/logs/gateway.log" 2>&1 &
pids+=($!)
wait_for_port "$GATEWAY_PORT" 30 || { echo "error: the gateway did not start, see $state/logs/gateway.log" >&2; tail -20 "$state/logs/gateway.log" >&2; exit 1; }

"${sim[@]}" --rate "$SIM_RATE" --no-progress --report "$state/simulation-report.json" >>"$state/logs/simulators.log" 2>&1 &
pids+=($!)

cat <<INFO

City telemetry gateway is running locally.
  MQTT broker      mqtt://127.0.0.1:$MQTT_PORT        (mosquitto_sub -p $MQTT_PORT -t '#' -v)
  InfluxDB         http://127.0.0.1:$INFLUX_PORT      database "city"
                   influx -port $INFLUX_PORT -database city -execute 'SELECT count(*) FROM environment'
  Gateway          partner listener  http://127.0.0.1:$GATEWAY_PORT   (/healthz, exchange API)
                   operator listener http://127.0.0.1:$OPERATOR_PORT   /readyz (details)  /metrics (Prometheus)  /api/quarantine
  Simulators       $((SIM_DEVICES * 3)) devices, $SIM_RATE msg/s, formats $SIM_FORMATS
  Device registry  $state/devices.json
  Quarantine       $state/quarantine.jsonl
  Logs             $state/logs/

Press Ctrl-C to stop everything.
INFO

# Stop everything when any component dies, and say which.
while true; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: a component stopped (pid $pid); see the logs in $state/logs/" >&2
      exit 1
    fi
  done
  sleep 1
done
