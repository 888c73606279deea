#!/usr/bin/env bash
# Runs two sister cities on this machine, each with its own mosquitto, InfluxDB database, gateway
# and simulated device fleet, sharing figures with each other under agreements, all on loopback
# with data under .local/ in the repository. Ctrl-C (or SIGTERM) stops everything.
#
# Our city is Lumen (id lumen), its sister city Samudra (id samudra). On the first start the script
# makes each city's signing key and operator key, issues each city a partner key at the other's
# gateway and writes the agreements both ways; later starts reuse them.
#
# Environment (all optional):
#   Lumen:    MQTT_PORT=1883  GATEWAY_PORT=8080 (partner listener)  OPERATOR_PORT=8081
#   Samudra:  SISTER_MQTT_PORT=1884  SISTER_GATEWAY_PORT=8090  SISTER_OPERATOR_PORT=8091
#   InfluxDB: INFLUX_PORT=8086  INFLUX_RPC_PORT=8088 (databases "city" and "sister")
#   Fleets:   SIM_DEVICES=30 (per domain and city)  SIM_RATE=50 (messages/s per city)  SIM_SEED=42
#             SIM_FORMATS=json,senml,chirpstack,tts  SIM_BACKFILL=3h (readings the devices buffered
#             while offline, sent with their own times at every start)
#   STATE_DIR=.local (where everything is kept)
set -euo pipefail

# A background job of a non-interactive shell starts with SIGINT and SIGQUIT ignored, and bash
# cannot trap a signal that was ignored when it started: run again with their default actions, so
# Ctrl-C and kill -INT stop the stack cleanly however it was started.
if [ -z "${RUN_LOCAL_SIGNALS:-}" ] && env --default-signal=INT true 2>/dev/null; then
  export RUN_LOCAL_SIGNALS=reset
  exec env --default-signal=INT,QUIT bash "$0" "$@"
fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source deploy/lib/common.sh
source deploy/lib/cities.sh

SIM_DEVICES=${SIM_DEVICES:-30}
SIM_RATE=${SIM_RATE:-50}
SIM_SEED=${SIM_SEED:-42}
SIM_FORMATS=${SIM_FORMATS:-json,senml,chirpstack,tts}
SIM_BACKFILL=${SIM_BACKFILL:-3h}
mkdir -p "$state/logs" "$state/influxdb"

started=$SECONDS
# Progress: what the script is doing, with the time since it started.
step() { printf '[%3ds] %s\n' $((SECONDS - started)) "$*"; }

# Runs a long command with its output in a log, saying every 10 s that it is still at it.
with_progress() {
  local what=$1 log=$2; shift 2
  "$@" >>"$log" 2>&1 &
  local pid=$! since=$SECONDS
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( (SECONDS - since) % 10 == 0 )) && kill -0 "$pid" 2>/dev/null; then
      printf '[%3ds]   still %s (%d s so far)\n' $((SECONDS - started)) "$what" $((SECONDS - since))
    fi
  done
  wait "$pid"
}

# One stack at a time: a second run says so instead of fighting over ports.
lock="$state/run-local.pid"
if [ -f "$lock" ] && kill -0 "$(cat "$lock")" 2>/dev/null; then
  echo "error: the local stack is already running (pid $(cat "$lock")). Stop it with Ctrl-C in its terminal, or: kill $(cat "$lock")" >&2
  exit 1
fi
for spec in "MQTT_PORT:$MQTT_PORT" "SISTER_MQTT_PORT:$SISTER_MQTT_PORT" "INFLUX_PORT:$INFLUX_PORT" \
            "INFLUX_RPC_PORT:$INFLUX_RPC_PORT" "GATEWAY_PORT:$GATEWAY_PORT" "OPERATOR_PORT:$OPERATOR_PORT" \
            "SISTER_GATEWAY_PORT:$SISTER_GATEWAY_PORT" "SISTER_OPERATOR_PORT:$SISTER_OPERATOR_PORT"; do
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
  step "Stopping the local stack..."
  # One at a time, newest first, each waited for: the simulators stop, the gateways write what
  # they hold before InfluxDB and the brokers go away, and the brokers save their sessions.
  for ((i=${#pids[@]}-1; i>=0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  rm -f "$lock"
  step "Stopped. Data is kept in $state (delete it for a fresh start)."
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

ensure_dotnet
# The clients (mosquitto_sub, influx, curl, jq) are for looking at the stack; the banner uses them.
ensure_packages mosquitto mosquitto-clients influxdb influxdb-client curl jq socat

step "Building the gateway and the simulators (logs: $state/logs/build.log)..."
: >"$state/logs/build.log"
with_progress "building the gateway" "$state/logs/build.log" \
  dotnet build "$root/gateway/Gateway.csproj" -c Release --nologo -v quiet -o "$state/bin/gateway" \
  || { echo "error: build failed, see $state/logs/build.log" >&2; exit 1; }
with_progress "building the simulators" "$state/logs/build.log" \
  dotnet build "$root/simulators/Simulators.csproj" -c Release --nologo -v quiet -o "$state/bin/simulators" \
  || { echo "error: build failed, see $state/logs/build.log" >&2; exit 1; }
gateway=(dotnet "$state/bin/gateway/Gateway.dll")

# --- First start: keys and agreements, kept under $state and reused ---------------------------
# Each city's signing key, operator key and user device registry.
for city in lumen samudra; do
  dir=$(city_dir "$city")
  mkdir -p "$dir/mosquitto" "$dir/agreements" "$dir/keys" "$dir/exchange"
  chmod 700 "$dir/keys"
  if [ ! -f "$dir/city-key.pem" ]; then
    step "Making $(city_name "$city")'s signing key ($dir/city-key.pem)"
    "${gateway[@]}" exchange keygen --out "$dir/city-key.pem" >"$dir/city-key.txt"
  fi
  sed -n '/BEGIN PUBLIC KEY/,/END PUBLIC KEY/p' "$dir/city-key.txt" >"$dir/city-public-key.pem"
  if [ ! -f "$dir/operator-key" ]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/operator-key")
    step "Made $(city_name "$city")'s operator key ($dir/operator-key)"
  fi
  # The user's own devices; the simulated fleet's registry is a file of its own, rewritten at
  # every start, so nothing added here is lost.
  [ -f "$dir/devices.json" ] || printf '{ "city": "%s", "deviceTypes": {}, "devices": {} }\n' "$city" >"$dir/devices.json"
done

# Each city issues a key to the other, who keeps it under keys/<issuer>.key.
for pair in "lumen samudra" "samudra lumen"; do
  set -- $pair; issuer=$1; holder=$2
  keyfile="$(city_dir "$holder")/keys/$issuer.key"
  if [ ! -s "$keyfile" ]; then
    out=$("${gateway[@]}" exchange issue-key --partner "$holder" --data "$(city_dir "$issuer")/exchange")
    (umask 077; sed -n 's/^key: *//p' <<<"$out" >"$keyfile")
    [ -s "$keyfile" ] || { echo "error: could not issue $holder's key at $issuer: $out" >&2; exit 1; }
    step "$(city_name "$issuer") issued $(city_name "$holder") a partner key ($keyfile)"
  fi
done

# The agreements: what each city shares with the other. Different metrics each way; traffic and
# water figures get noise (differential privacy), air-quality means need three devices per cell.
# The budgets are generous because the demonstration releases a window every 15 minutes for as
# long as it runs; a real agreement sets what the cities agreed.
# Valid from three hours before the first start (the default backfill), on a window boundary.
valid_from=$(date -u -d "@$(( ($(date +%s) - 3 * 3600) / 900 * 900 ))" +%Y-%m-%dT%H:%M:%SZ)
valid_until=$(date -u -d "+1 year" +%Y-%m-%dT00:00:00Z)
write_agreement() {
  local city=$1 partner=$2 metrics=$3 file
  file="$(city_dir "$city")/agreements/$partner.json"
  [ -f "$file" ] && return 0
  cat >"$file" <<JSON
{
  "partner": { "id": "$partner", "name": "$(city_name "$partner")" },
  "validFrom": "$valid_from",
  "validUntil": "$valid_until",
  "window": "00:15:00",
  "allowedLateness": "00:01:00",
  "districts": ["*"],
  "epsilonPerMonth": 5000,
  "metrics": [
$metrics
  ]
}
JSON
  step "Wrote the agreement of $(city_name "$city") with $(city_name "$partner") ($file)"
}
write_agreement lumen samudra '    { "domain": "traffic", "metric": "intensity", "aggregate": "sum", "minDevices": 3,
      "clamp": [0, 2000], "granularity": 1, "epsilon": 0.5, "minVolume": 5 },
    { "domain": "environment", "metric": "pm25", "aggregate": "mean", "minDevices": 3 },
    { "domain": "environment", "metric": "no2", "aggregate": "mean", "minDevices": 3 }'
write_agreement samudra lumen '    { "domain": "water", "metric": "flow", "aggregate": "mean", "minDevices": 3,
      "clamp": [0, 500], "granularity": 0.1, "epsilon": 0.5, "minVolume": 1 },
    { "domain": "traffic", "metric": "intensity", "aggregate": "sum", "minDevices": 3,
      "clamp": [0, 2000], "granularity": 1, "epsilon": 0.5, "minVolume": 5 },
    { "domain": "environment", "metric": "pm25", "aggregate": "mean", "minDevices": 3 }'

# --- Services -------------------------------------------------------------------------------
step "Starting mosquitto for each city and InfluxDB..."
for city in lumen samudra; do
  dir=$(city_dir "$city")
  sed -e "s|@PORT@|$(city_port "$city" mqtt)|g" -e "s|@DATA@|$dir/mosquitto|g" -e "s|@USER@|$(id -un)|g" \
    deploy/mosquitto/local.conf.template >"$dir/mosquitto/mosquitto.conf"
  mosquitto -c "$dir/mosquitto/mosquitto.conf" >"$state/logs/$city-mosquitto.log" 2>&1 &
  pids+=($!)
done
sed -e "s|@DATA@|$state/influxdb|g" -e "s|@HTTP_PORT@|$INFLUX_PORT|g" -e "s|@RPC_PORT@|$INFLUX_RPC_PORT|g" \
  deploy/influxdb/influxdb.conf.template >"$state/influxdb/influxdb.conf"
influxd -config "$state/influxdb/influxdb.conf" >"$state/logs/influxdb.log" 2>&1 &
pids+=($!)
for city in lumen samudra; do
  wait_for_port "$(city_port "$city" mqtt)" 15 || { echo "error: mosquitto did not start, see $state/logs/$city-mosquitto.log" >&2; exit 1; }
done
wait_for_port "$INFLUX_PORT" 30 || { echo "error: InfluxDB did not start, see $state/logs/influxdb.log" >&2; exit 1; }

# --- Fleets' registries, then the gateways ----------------------------------------------------
# The simulator commands are built into "cmd" and run from this shell, so that a background one's
# $! is the simulator itself and the stop below reaches it (a function run with & is a subshell
# whose child would outlive it).
simulator() {
  local city=$1; shift
  local dir; dir=$(city_dir "$city")
  local extra=()
  [ "$city" = samudra ] && extra=(--districts "$SISTER_DISTRICTS" --centre "$SISTER_CENTRE")
  cmd=(dotnet "$state/bin/simulators/Simulators.dll" --broker "mqtt://127.0.0.1:$(city_port "$city" mqtt)" --city "$city" \
    --traffic "$SIM_DEVICES" --water "$SIM_DEVICES" --environment "$SIM_DEVICES" --formats "$SIM_FORMATS" \
    --seed "$(city_seed "$city")" --registry "$dir/simulated-devices.json" "${extra[@]}" "$@")
}
for city in lumen samudra; do
  simulator "$city" --registry-only
  "${cmd[@]}" >"$state/logs/$city-simulators.log" 2>&1 \
    || { echo "error: the simulators could not write $(city_name "$city")'s device registry, see $state/logs/$city-simulators.log" >&2; exit 1; }
done

# Each city also has a water-quality instrument on a serial line: a pseudo-terminal pair stands in
# for the cable, the gateway reads one end and the serial simulator writes the other.
serial_sim() {
  local city=$1; shift
  local dir; dir=$(city_dir "$city")
  local extra=()
  [ "$city" = samudra ] && extra=(--districts "$SISTER_DISTRICTS" --centre "$SISTER_CENTRE")
  cmd=(dotnet "$state/bin/simulators/Simulators.dll" serial --port "$dir/tty-instrument" --format kv --devices 4 --rate 2
    --noise 0.01 --seed "$(city_seed "$city")" --city "$city" --registry "$dir/serial-devices.json" "${extra[@]}" "$@")
}
for city in lumen samudra; do
  dir=$(city_dir "$city")
  serial_sim "$city" --registry-only
  "${cmd[@]}" >>"$state/logs/$city-simulators.log" 2>&1 \
    || { echo "error: the serial simulator could not write $(city_name "$city")'s registry, see $state/logs/$city-simulators.log" >&2; exit 1; }
  rm -f "$dir/tty-gateway" "$dir/tty-instrument"
  socat pty,raw,echo=0,link="$dir/tty-gateway" pty,raw,echo=0,link="$dir/tty-instrument" >"$state/logs/$city-serial-line.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do [ -e "$dir/tty-gateway" ] && [ -e "$dir/tty-instrument" ] && break; sleep 0.1; done
  [ -e "$dir/tty-gateway" ] || { echo "error: socat made no serial line, see $state/logs/$city-serial-line.log" >&2; exit 1; }
done

step "Starting the two gateways..."
for city in lumen samudra; do
  dir=$(city_dir "$city"); partner=$(partner_of "$city")
  serial=(--Gateway:Registry:Paths:2="$dir/serial-devices.json"
    --Gateway:Serial:Ports:0:Name=water-quality --Gateway:Serial:Ports:0:Path="$dir/tty-gateway"
    --Gateway:Serial:Ports:0:Format=kv --Gateway:Serial:Ports:0:DeviceField=dev)
  (cd "$dir" && \
   Gateway__Operations__ApiKey="$(cat "$dir/operator-key")" \
   Gateway__Exchange__Partners__0__ApiKey="$(cat "$dir/keys/$partner.key")" \
   Gateway__Exchange__Partners__0__PublicKeyPem="$(cat "$(city_dir "$partner")/city-public-key.pem")" \
   exec "${gateway[@]}" --urls "http://127.0.0.1:$(city_port "$city" gateway)" \
    --Gateway:Operations:Listen="http://127.0.0.1:$(city_port "$city" operator)" \
    --Gateway:Mqtt:Url="mqtt://127.0.0.1:$(city_port "$city" mqtt)" \
    --Gateway:Mqtt:ClientId="gateway-$city" \
    --Gateway:Influx:Url="http://127.0.0.1:$INFLUX_PORT" \
    --Gateway:Influx:Database="$(city_database "$city")" \
    --Gateway:Registry:Paths:0="$dir/simulated-devices.json" \
    --Gateway:Registry:Paths:1="$dir/devices.json" \
    --Gateway:Journal:Path="$dir/journal" \
    --Gateway:Quarantine:Path="$dir/quarantine.jsonl" \
    --Gateway:Exchange:Enabled=true \
    --Gateway:Exchange:CityId="$city" \
    --Gateway:Exchange:CityName="$(city_name "$city")" \
    --Gateway:Exchange:PublicBaseUrl="http://127.0.0.1:$(city_port "$city" gateway)" \
    --Gateway:Exchange:AgreementsPath="$dir/agreements" \
    --Gateway:Exchange:DataPath="$dir/exchange" \
    --Gateway:Exchange:Signing:KeyFile="$dir/city-key.pem" \
    --Gateway:Exchange:ReleaseCheckSeconds=60 \
    --Gateway:Exchange:CityEpsilonPerMonth=5000 \
    --Gateway:Exchange:Partners:0:Id="$partner" \
    --Gateway:Exchange:Partners:0:WellKnownUrl="http://127.0.0.1:$(city_port "$partner" gateway)/.well-known/city-exchange" \
    --Gateway:Exchange:Partners:0:PollSeconds=15 "${serial[@]}") >"$state/logs/$city-gateway.log" 2>&1 &
  pids+=($!)
done
for city in lumen samudra; do
  wait_for_port "$(city_port "$city" gateway)" 60 || {
    echo "error: $(city_name "$city")'s gateway did not start, see $state/logs/$city-gateway.log" >&2
    tail -20 "$state/logs/$city-gateway.log" >&2; exit 1; }
done

step "Starting the simulated fleets (each first sends the last $SIM_BACKFILL of buffered readings) and the serial instruments..."
for city in lumen samudra; do
  serial_sim "$city" --no-progress
  "${cmd[@]}" >>"$state/logs/$city-simulators.log" 2>&1 &
  pids+=($!)
done
for city in lumen samudra; do
  simulator "$city" --backfill "$SIM_BACKFILL" --rate "$SIM_RATE" --no-progress \
    --report "$(city_dir "$city")/simulation-report.json"
  "${cmd[@]}" >>"$state/logs/$city-simulators.log" 2>&1 &
  pids+=($!)
done

banner() {
  local city=$1 dir db
  dir=$(city_dir "$city"); db=$(city_database "$city")
  cat <<INFO
  $(city_name "$city") (city id $city)$( [ "$city" = lumen ] && echo ", our city" || echo ", the sister city")
    Gateway          partner listener  http://127.0.0.1:$(city_port "$city" gateway)   (what a partner city reaches)
                     transparency page http://127.0.0.1:$(city_port "$city" gateway)/transparency  (public; ?lang=id for Bahasa Indonesia)
                     partner API       http://127.0.0.1:$(city_port "$city" gateway)/api/exchange/v1/feed   (key: $(city_dir "$(partner_of "$city")")/keys/$city.key)
                     operator listener http://127.0.0.1:$(city_port "$city" operator)   /readyz  /metrics  /api/quarantine
                     operator key      $dir/operator-key
                       curl -H "Authorization: Bearer \$(cat $dir/operator-key)" http://127.0.0.1:$(city_port "$city" operator)/api/quarantine
    MQTT broker      mqtt://127.0.0.1:$(city_port "$city" mqtt)   mosquitto_sub -p $(city_port "$city" mqtt) -t '#' -v
    InfluxDB         http://127.0.0.1:$INFLUX_PORT database "$db"
                       influx -port $INFLUX_PORT -database $db -execute 'SELECT count(*) FROM environment'
                       influx -port $INFLUX_PORT -database $db -execute 'SELECT * FROM partner ORDER BY time DESC LIMIT 10'
    Agreement        $dir/agreements/$(partner_of "$city").json
    Devices          yours: $dir/devices.json   simulated: $dir/simulated-devices.json
    Quarantine       $dir/quarantine.jsonl
    Serial line      $dir/tty-gateway (a water-quality instrument, 4 devices, kv lines)
INFO
}

cat <<INFO

Two sister cities are running locally ($((SECONDS - started)) s). Each measures its own districts,
shares figures with the other under an agreement and shows the other's beside its own.
$(banner lumen)
$(banner samudra)
  Simulators       $((SIM_DEVICES * 3)) devices per city, $SIM_RATE msg/s each, formats $SIM_FORMATS
  Dashboards       dashboards/ (Grafana; point a data source at InfluxDB, database "city" or "sister")
  Logs             $state/logs/
  Check            deploy/check-local.sh   (each city's "partner" equals what the other released, in "shared")

The first releases are made about a minute after start; each city pulls the other's every 15 s.
Press Ctrl-C to stop everything.
INFO

# Stop everything when any component dies, and say which; say once when each city has the other's figures.
announced=()
while true; do
  for pid in "${pids[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "error: a component stopped (pid $pid); see the logs in $state/logs/" >&2
      exit 1
    fi
  done
  if [ ${#announced[@]} -lt 2 ] && (( SECONDS % 5 == 0 )); then
    for city in lumen samudra; do
      [[ " ${announced[*]} " == *" $city "* ]] && continue
      n=$(influx_count "$(city_database "$city")" "SELECT count(value) FROM partner" 2>/dev/null || echo 0)
      if [ "${n:-0}" -gt 0 ]; then
        step "$(city_name "$city") received $(city_name "$(partner_of "$city")")'s first figures ($n values in \"partner\")"
        announced+=("$city")
      fi
    done
  fi
  sleep 1
done
