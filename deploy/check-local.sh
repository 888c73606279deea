#!/usr/bin/env bash
# Checks the exchange of the local stack (deploy/run-local.sh): each city's measurement "partner"
# holds exactly the values the other city released to it, as the other recorded them in "shared"
# (same windows, districts, metrics, aggregates and values), and neither is empty.
#
#   deploy/check-local.sh            check once; exit 0 when both directions match
#   deploy/check-local.sh --wait 180 keep checking for up to 180 s (a release may be on its way)
#
# Reads the same environment variables as run-local.sh (INFLUX_PORT, STATE_DIR, ...).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/deploy/lib/cities.sh"

wait_s=0
case "${1:-}" in
  --wait) wait_s=${2:?--wait needs a number of seconds} ;;
  "") ;;
  *) echo "usage: $0 [--wait SECONDS]" >&2; exit 2 ;;
esac
for tool in curl jq; do
  command -v $tool >/dev/null || { echo "error: $tool is needed (apt-get install $tool)" >&2; exit 2; }
done

# One line per value: time district domain metric aggregate value, sorted.
rows() {
  influx_query "$1" "$2" | jq -r '.results[0].series[]? | .tags as $t | .values[]
    | "\(.[0]) \($t.district) \($t.domain) \($t.metric) \($t.aggregate) \(.[1])"' | sort
}

# check FROM TO: what FROM released to TO equals what TO received from FROM.
check() {
  local from=$1 to=$2 sent got
  sent=$(rows "$(city_database "$from")" "SELECT value FROM shared WHERE partner = '$to' GROUP BY district, domain, metric, aggregate")
  got=$(rows "$(city_database "$to")" "SELECT value FROM partner WHERE city = '$from' GROUP BY district, domain, metric, aggregate")
  local n_sent n_got
  n_sent=$(grep -c . <<<"$sent" || true); n_got=$(grep -c . <<<"$got" || true)
  if [ "$n_sent" -eq 0 ]; then
    echo "  $(city_name "$from") -> $(city_name "$to"): nothing released yet"
    return 1
  fi
  if [ "$sent" != "$got" ]; then
    echo "  $(city_name "$from") -> $(city_name "$to"): $n_sent values released, $n_got received; they differ:"
    diff <(echo "$sent") <(echo "$got") | head -10 | sed 's/^/    /'
    return 1
  fi
  local windows
  windows=$(cut -d' ' -f1 <<<"$sent" | sort -u | wc -l)
  echo "  $(city_name "$from") -> $(city_name "$to"): $n_sent values in $windows windows, released and received alike"
}

deadline=$((SECONDS + wait_s))
while true; do
  out=$( r=0; check lumen samudra || r=1; check samudra lumen || r=1; exit $r ) && ok=1 || ok=0
  if [ $ok -eq 1 ]; then
    echo "exchange check passed:"; echo "$out"; exit 0
  fi
  if [ $SECONDS -ge $deadline ]; then
    echo "exchange check failed:" >&2; echo "$out" >&2; exit 1
  fi
  sleep 5
done
