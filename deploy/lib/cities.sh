# The two cities of the local stack: shared by deploy/run-local.sh and deploy/check-local.sh, so
# both read the same ports, folders and databases from the same environment variables.

state=${STATE_DIR:-$root/.local}
case "$state" in /*) ;; *) state="$root/$state" ;; esac

MQTT_PORT=${MQTT_PORT:-1883}
GATEWAY_PORT=${GATEWAY_PORT:-8080}
OPERATOR_PORT=${OPERATOR_PORT:-8081}
SISTER_MQTT_PORT=${SISTER_MQTT_PORT:-1884}
SISTER_GATEWAY_PORT=${SISTER_GATEWAY_PORT:-8090}
SISTER_OPERATOR_PORT=${SISTER_OPERATOR_PORT:-8091}
INFLUX_PORT=${INFLUX_PORT:-8086}
INFLUX_RPC_PORT=${INFLUX_RPC_PORT:-8088}

# The sister city's own districts and where it lies.
SISTER_DISTRICTS=pelabuhan,kota-lama,pasar-baru,tepi-sungai,bukit-utara
SISTER_CENTRE=-6.1200,106.8300

city_name() { case $1 in lumen) echo Lumen ;; samudra) echo Samudra ;; esac; }
partner_of() { case $1 in lumen) echo samudra ;; samudra) echo lumen ;; esac; }
city_dir() { echo "$state/$1"; }
city_database() { case $1 in lumen) echo city ;; samudra) echo sister ;; esac; }
city_seed() { case $1 in lumen) echo "${SIM_SEED:-42}" ;; samudra) echo $(( ${SIM_SEED:-42} + 1000 )) ;; esac; }

# city_port CITY mqtt|gateway|operator
city_port() {
  case $1:$2 in
    lumen:mqtt) echo "$MQTT_PORT" ;; lumen:gateway) echo "$GATEWAY_PORT" ;; lumen:operator) echo "$OPERATOR_PORT" ;;
    samudra:mqtt) echo "$SISTER_MQTT_PORT" ;; samudra:gateway) echo "$SISTER_GATEWAY_PORT" ;; samudra:operator) echo "$SISTER_OPERATOR_PORT" ;;
  esac
}

# influx_query DATABASE QUERY: InfluxDB's JSON answer (times in seconds).
influx_query() {
  curl -sS --fail --max-time 20 -G "http://127.0.0.1:$INFLUX_PORT/query" \
    --data-urlencode "db=$1" --data-urlencode "epoch=s" --data-urlencode "q=$2"
}

# influx_count DATABASE "SELECT count(x) FROM m": the single count, 0 when there is none.
influx_count() {
  influx_query "$1" "$2" | jq -r '[.results[0].series[]?.values[][1]] | add // 0'
}
