#!/usr/bin/env bash
# Checks the deployment files in deploy/ on a machine without a Docker engine:
#   - the compose file resolves with .env.example (docker-compose config), also with --profile demo
#   - the Dockerfiles' publish steps, run here with the very same commands (read from the Dockerfiles)
#   - each Dockerfile's runtime image provides the shared frameworks the published app asks for
#   - self-contained publishes for linux-x64 and (if its runtime pack restores) linux-arm64
#   - the self-contained gateway starts, and the Dockerfile's HEALTHCHECK command passes against it
#   - the InfluxDB override files in deploy/config load, and v2/v3 still need the token from the environment
#   - mosquitto accepts deploy/compose/mosquitto/mosquitto.conf with a mosquitto_passwd file
#   - systemd-analyze verify on the systemd unit
# Container images are not built: that needs a Docker engine. Not part of CI (.ci/run).
# Prints a summary; exits 1 when a check failed.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
source deploy/lib/common.sh

started=$(date +%s)
work="$(mktemp -d /tmp/check-deploy.XXXXXX)"
pids=()
cleanup() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[$i]}" 2>/dev/null; wait "${pids[$i]}" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

results=()
failures=0
pass() { results+=("PASS  $1"); echo "  PASS  $1"; }
fail() { results+=("FAIL  $1"); echo "  FAIL  $1" >&2; failures=$((failures + 1)); }
skip() { results+=("SKIP  $1"); echo "  SKIP  $1"; }
step() { echo; echo "== $1"; }
log_tail() { [ -f "$1" ] && tail -n "${2:-15}" "$1" | sed 's/^/        /' >&2; }

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    port_in_use "$p" || { echo "$p"; return 0; }
  done
  return 1
}

step "Prerequisites"
ensure_dotnet || exit 1
# docker-compose: the Debian package (v1.29); the `docker compose` plugin is not packaged here.
# mosquitto and its clients for the broker configuration check.
ensure_packages docker-compose mosquitto mosquitto-clients || exit 1
compose=(docker-compose)
if docker compose version >/dev/null 2>&1; then compose=(docker compose); fi
echo "  compose: $("${compose[@]}" version 2>/dev/null | head -1)"
echo "  dotnet:  $(dotnet --version)"

# ---------------------------------------------------------------------------------------------
step "Compose file"
cf=deploy/compose/docker-compose.yml
env_example=deploy/compose/.env.example
if "${compose[@]}" -f "$cf" --env-file "$env_example" config >"$work/compose.yml" 2>"$work/compose.err"; then
  pass "compose config with .env.example ($(grep -c '' "$work/compose.yml") lines resolved)"
else
  fail "compose config with .env.example"; log_tail "$work/compose.err"
fi
if services=$("${compose[@]}" -f "$cf" --env-file "$env_example" --profile demo config --services 2>"$work/compose-demo.err"); then
  want="gateway grafana influxdb mosquitto registry simulators"
  got=$(echo "$services" | sort | tr '\n' ' ' | sed 's/ $//')
  if [ "$got" = "$want" ]; then pass "compose config --profile demo: services $got"
  else fail "compose config --profile demo: services '$got', expected '$want'"; fi
else
  fail "compose config --profile demo"; log_tail "$work/compose-demo.err"
fi
# Every variable the compose file uses must be in .env.example (a first-time user copies only that).
missing_vars=()
for v in $(grep -vE '^\s*#' "$cf" | grep -oE '\$\{[A-Z_][A-Z0-9_]*' | cut -c3- | sort -u); do
  grep -qE "^$v=" "$env_example" || missing_vars+=("$v")
done
if [ ${#missing_vars[@]} -eq 0 ]; then pass "every variable of the compose file is listed in .env.example"
else fail ".env.example lacks: ${missing_vars[*]}"; fi
# Mandatory variables really are mandatory: an empty environment must be refused.
if env -i PATH="$PATH" HOME="$HOME" "${compose[@]}" -f "$cf" --env-file /dev/null config -q >/dev/null 2>&1; then
  fail "compose config without secrets should be refused"
else
  pass "compose config without .env is refused (secrets have no defaults)"
fi

# ---------------------------------------------------------------------------------------------
step "Dockerfile publish steps, run here"
# The command is read from the Dockerfile, so what runs here is what runs in the image build.
publish_from() {  # Dockerfile, label, output folder
  local cmd
  cmd=$(grep -E '^RUN dotnet publish ' "$1" | sed 's/^RUN //')
  if [ -z "$cmd" ] || [ "$(grep -cE '^RUN dotnet publish ' "$1")" -ne 1 ]; then
    fail "$2: expected one 'RUN dotnet publish' line in $1"; return 1
  fi
  case "$cmd" in *" -o /out") ;; *) fail "$2: publish step does not end in '-o /out': $cmd"; return 1;; esac
  local local_cmd="${cmd% -o /out} -o $3"
  echo "  $cmd   (here: -o $3)"
  local t0=$(date +%s)
  if bash -c "$local_cmd --nologo" >"$work/$2.publish.log" 2>&1; then
    pass "$2: '$cmd' ($(( $(date +%s) - t0 )) s)"
  else
    fail "$2: '$cmd'"; log_tail "$work/$2.publish.log"; return 1
  fi
}
# Frameworks in the published runtimeconfig must be in the Dockerfile's runtime image.
frameworks_match() {  # Dockerfile, runtimeconfig, label
  local image needs
  image=$(grep -E '^FROM ' "$1" | tail -1 | awk '{print $2}')
  needs=$(grep -oE '"Microsoft\.[A-Za-z]+\.App"' "$2" | tr -d '"' | sort -u | tr '\n' ' ')
  case "$needs" in
    *AspNetCore*) case "$image" in mcr.microsoft.com/dotnet/aspnet:*) pass "$3: runtime image $image provides $needs";;
                    *) fail "$3: needs $needs but the runtime image is $image";; esac ;;
    *)            case "$image" in mcr.microsoft.com/dotnet/runtime:*|mcr.microsoft.com/dotnet/aspnet:*) pass "$3: runtime image $image provides $needs";;
                    *) fail "$3: unexpected runtime image $image";; esac ;;
  esac
}
if publish_from deploy/containers/gateway.Dockerfile gateway "$work/out-gateway"; then
  frameworks_match deploy/containers/gateway.Dockerfile "$work/out-gateway/Gateway.runtimeconfig.json" gateway
  ep=$(grep -E '^ENTRYPOINT' deploy/containers/gateway.Dockerfile | grep -oE '/app/[A-Za-z.]+')
  [ -f "$work/out-gateway/$(basename "$ep")" ] && pass "gateway: ENTRYPOINT $ep is in the publish output" \
    || fail "gateway: ENTRYPOINT $ep is not in the publish output"
fi
if publish_from deploy/containers/simulators.Dockerfile simulators "$work/out-simulators"; then
  frameworks_match deploy/containers/simulators.Dockerfile "$work/out-simulators/Simulators.runtimeconfig.json" simulators
  ep=$(grep -E '^ENTRYPOINT' deploy/containers/simulators.Dockerfile | grep -oE '/app/[A-Za-z.]+')
  [ -f "$work/out-simulators/$(basename "$ep")" ] && pass "simulators: ENTRYPOINT $ep is in the publish output" \
    || fail "simulators: ENTRYPOINT $ep is not in the publish output"
fi

# ---------------------------------------------------------------------------------------------
step "Self-contained publishes (systemd installs)"
for rid in linux-x64 linux-arm64; do
  cmd="dotnet publish gateway/Gateway.csproj -c Release -r $rid --self-contained -o $work/out/$rid"
  echo "  $cmd"
  t0=$(date +%s)
  if $cmd --nologo >"$work/publish-$rid.log" 2>&1; then
    if [ -x "$work/out/$rid/Gateway" ]; then pass "self-contained $rid publish ($(( $(date +%s) - t0 )) s, $(du -sm "$work/out/$rid" | cut -f1) MB)"
    else fail "self-contained $rid publish: no Gateway executable"; fi
  elif [ "$rid" != linux-x64 ] && grep -q "NU1101" "$work/publish-$rid.log"; then
    # The runtime pack comes from the package feed; a feed without it cannot do this publish.
    skip "self-contained $rid publish: runtime pack not available from the configured NuGet feed ($(grep -oE 'Microsoft\.[A-Za-z]+\.App\.(Runtime|Host)\.[a-z0-9-]+' "$work/publish-$rid.log" | sort -u | tr '\n' ' '))"
  else
    fail "self-contained $rid publish"; log_tail "$work/publish-$rid.log"
  fi
done

# ---------------------------------------------------------------------------------------------
step "Gateway start and container health check"
gw="$work/out/linux-x64/Gateway"
if [ -x "$gw" ] && [ -f "$work/out-simulators/Simulators.dll" ]; then
  mkdir -p "$work/run"
  dotnet "$work/out-simulators/Simulators.dll" --traffic 2 --water 2 --environment 2 \
    --registry "$work/run/devices.json" --registry-only >"$work/registry.log" 2>&1 \
    || { fail "simulators --registry-only"; log_tail "$work/registry.log"; }
  http_port=$(free_port); op_port=$(free_port); dead_port=$(free_port)
  # Nothing listens on dead_port: the gateway must still come up (it retries broker and InfluxDB).
  (cd "$work/run" && exec env Urls="http://127.0.0.1:$http_port" Gateway__Operations__Listen="http://127.0.0.1:$op_port" \
     Gateway__Mqtt__Url="mqtt://127.0.0.1:$dead_port" Gateway__Influx__Url="http://127.0.0.1:$dead_port" \
     Gateway__Registry__Path="$work/run/devices.json" \
     Gateway__Journal__Path="$work/run/journal" Gateway__Quarantine__Path="$work/run/quarantine.jsonl" \
     Gateway__Exchange__DataPath="$work/run/exchange" "$gw") >"$work/gateway.log" 2>&1 &
  gpid=$!; pids+=("$gpid")
  if wait_for_port "$http_port" 30; then
    pass "self-contained linux-x64 gateway starts (HTTP on $http_port, broker and InfluxDB absent)"
    # The HEALTHCHECK command from the Dockerfile, port 8080 replaced by the test port.
    hc=$(grep -A1 '^HEALTHCHECK' deploy/containers/gateway.Dockerfile | grep -oE 'CMD \[.*\]$' | sed 's/^CMD //')
    hc_script=$(python3 -c 'import json,sys; a=json.loads(sys.argv[1]); assert a[:2]==["bash","-c"]; print(a[2])' "$hc" 2>/dev/null)
    if [ -z "$hc_script" ]; then
      fail "HEALTHCHECK: could not read the exec-form bash command from the Dockerfile"
    else
      hc_script=${hc_script//127.0.0.1\/8080/127.0.0.1\/$http_port}
      if bash -c "$hc_script"; then pass "HEALTHCHECK command (bash /dev/tcp GET /healthz) succeeds against the gateway"
      else fail "HEALTHCHECK command fails against a running gateway"; fi
      hc_dead=${hc_script//127.0.0.1\/$http_port/127.0.0.1\/$dead_port}
      if bash -c "$hc_dead" 2>/dev/null; then fail "HEALTHCHECK command succeeds with nothing listening"
      else pass "HEALTHCHECK command fails when nothing listens"; fi
    fi
    # Operator endpoints on the operator listener only.
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$op_port/metrics")" = 200 ] \
       && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/metrics")" = 404 ] \
       && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/api/quarantine")" = 404 ]; then
      pass "/metrics and the quarantine API answer on the operator listener ($op_port) only"
    else fail "operator endpoints: expected /metrics 200 on $op_port and 404 on the partner listener $http_port"; fi
    t0=$(date +%s%N)
    kill -TERM "$gpid"; wait "$gpid"; rc=$?
    ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    [ "$rc" -eq 0 ] && pass "gateway stops on SIGTERM with exit 0 (${ms} ms)" || { fail "gateway exit code $rc on SIGTERM"; log_tail "$work/gateway.log"; }
  else
    fail "self-contained linux-x64 gateway did not start"; log_tail "$work/gateway.log"
  fi
else
  skip "gateway start: no self-contained linux-x64 build or simulators build"
fi

# ---------------------------------------------------------------------------------------------
step "InfluxDB override files (deploy/config), installed as appsettings.Production.json"
if [ -f "$work/out-gateway/Gateway.dll" ]; then
  for v in v1 v2 v3; do
    f="deploy/config/influx-$v.json"
    if ! python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert list(d)==["Gateway"] and list(d["Gateway"])==["Influx"]; assert not ({"Token","Password"} & set(d["Gateway"]["Influx"]))' "$f" 2>/dev/null; then
      fail "$f: must hold only Gateway:Influx, without Token or Password"; continue
    fi
    app="$work/app-$v"; cp -a "$work/out-gateway" "$app"; cp "$f" "$app/appsettings.Production.json"
    # MQTT off and no serial port: the gateway validates every setting, reports and stops (exit 2).
    run_cfg() { (cd "$work" && env "$@" timeout 30 dotnet "$app/Gateway.dll" --urls http://127.0.0.1:0 \
                  --Gateway:Mqtt:Enabled=false --Gateway:Registry:Path="$work/run/devices.json" 2>&1); }
    out_without=$(run_cfg DOTNET_NOLOGO=1)
    out_with=$(run_cfg Gateway__Influx__Token=placeholder-token)
    if [ "$v" = v1 ]; then
      if echo "$out_without" | grep -q 'Gateway:Influx'; then fail "$f: $(echo "$out_without" | grep 'Gateway:Influx')"
      else pass "$f loads, no Influx setting refused"; fi
    else
      if echo "$out_without" | grep -q "Gateway:Influx:Token: required for $v" && ! echo "$out_with" | grep -q 'Gateway:Influx'; then
        pass "$f loads (Version $v); the token comes from Gateway__Influx__Token, not the file"
      else
        fail "$f: expected a token error without Gateway__Influx__Token and none with it"; echo "$out_without$out_with" | sed 's/^/        /' >&2
      fi
    fi
  done
else
  skip "override files: no framework-dependent gateway build"
fi

# ---------------------------------------------------------------------------------------------
step "mosquitto configuration (deploy/compose/mosquitto/mosquitto.conf)"
mq="$work/mosquitto"; mkdir -p "$mq/data"
mq_port=$(free_port)
# The documented first-time step: mosquitto_passwd -c FILE USER (here with -b for a batch run).
mosquitto_passwd -c -b "$mq/passwd" city-gateway check-password >/dev/null 2>&1 \
  && pass "mosquitto_passwd -c creates the password file" || fail "mosquitto_passwd -c"
# As deploy/README.md says: the file belongs to the broker's user, mode 0600. Started as root,
# mosquitto drops to user "mosquitto" before it reads the file.
chmod 0600 "$mq/passwd"
if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then chmod 0711 "$work"; chown -R mosquitto: "$mq"; fi
sed -e "s|^listener 1883\$|listener $mq_port 127.0.0.1|" \
    -e "s|/mosquitto/config/passwd|$mq/passwd|" -e "s|/mosquitto/data/|$mq/data/|" \
    deploy/compose/mosquitto/mosquitto.conf > "$mq/mosquitto.conf"
mosquitto -c "$mq/mosquitto.conf" >"$mq/log" 2>&1 &
mpid=$!; pids+=("$mpid")
if wait_for_port "$mq_port" 10; then
  if mosquitto_pub -p "$mq_port" -u city-gateway -P check-password -t check/deploy -m ok -q 1 2>"$mq/pub.err"; then
    pass "mosquitto runs the compose configuration; a password-file user may publish"
  else fail "mosquitto: publishing with the password-file user failed"; log_tail "$mq/pub.err"; fi
  if mosquitto_pub -p "$mq_port" -t check/deploy -m anon -q 1 >/dev/null 2>&1; then fail "mosquitto: anonymous publish was accepted"
  else pass "mosquitto refuses anonymous clients"; fi
else
  fail "mosquitto did not start with the compose configuration"; log_tail "$mq/log"
fi
kill -TERM "$mpid" 2>/dev/null; wait "$mpid" 2>/dev/null

# ---------------------------------------------------------------------------------------------
step "systemd unit"
unit=deploy/systemd/city-gateway.service
if command -v systemd-analyze >/dev/null; then
  # ExecStart names /opt/city-gateway/Gateway, which is not installed here: verify a copy that
  # points at the self-contained build of this run instead (the only line that differs).
  if [ -x "$work/out/linux-x64/Gateway" ]; then
    sed "s|/opt/city-gateway/|$work/out/linux-x64/|g" "$unit" > "$work/city-gateway.service"
    if systemd-analyze verify "$work/city-gateway.service" >"$work/verify.log" 2>&1 && [ ! -s "$work/verify.log" ]; then
      pass "systemd-analyze verify (ExecStart pointed at this run's self-contained build)"
    else
      fail "systemd-analyze verify"; log_tail "$work/verify.log"
    fi
    if exposure=$(systemd-analyze security --offline=yes "$work/city-gateway.service" 2>/dev/null | grep -o 'Overall exposure level.*'); then
      pass "systemd-analyze security: ${exposure#*: }"
    fi
  else
    skip "systemd-analyze verify: no self-contained linux-x64 build to point ExecStart at"
  fi
  for key in 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' 'NoNewPrivileges=yes' 'StateDirectory=city-gateway' \
             'ReadWritePaths=/var/lib/city-gateway' 'CapabilityBoundingSet=' 'SupplementaryGroups=dialout' 'KillSignal=SIGTERM' \
             'EnvironmentFile=/etc/city-gateway/gateway.env' 'User=city-gateway'; do
    grep -qxF "$key" "$unit" || fail "$unit: missing $key"
  done
  stop=$(grep -oE '^TimeoutStopSec=[0-9]+' "$unit" | cut -d= -f2)
  shutdown=$(python3 -c 'import json; print(json.load(open("gateway/appsettings.json"))["Gateway"]["ShutdownTimeoutSeconds"])')
  [ -n "$stop" ] && [ "$stop" -gt "$shutdown" ] && pass "TimeoutStopSec=$stop > Gateway:ShutdownTimeoutSeconds=$shutdown" \
    || fail "TimeoutStopSec ($stop) must exceed Gateway:ShutdownTimeoutSeconds ($shutdown)"
else
  skip "systemd-analyze not installed"
fi

# ---------------------------------------------------------------------------------------------
echo
echo "== Summary"
printf '  %s\n' "${results[@]}"
echo "  NOT RUN  container image builds (docker build / docker compose build): no Docker engine on this machine"
echo "  $(grep -c '^PASS' <(printf '%s\n' "${results[@]}")) passed, $failures failed, $(grep -c '^SKIP' <(printf '%s\n' "${results[@]}")) skipped in $(( $(date +%s) - started )) s"
[ "$failures" -eq 0 ]
