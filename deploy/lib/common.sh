# Shared by deploy/run-local.sh and deploy/test.sh.

# Installs the Debian/Ubuntu packages that are missing (as root, or through sudo).
ensure_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "Installing missing packages: ${missing[*]}"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "error: need root (or sudo) to install: ${missing[*]}" >&2
      echo "       install them yourself: apt-get install ${missing[*]}" >&2
      return 1
    fi
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq
  # The packages' own system services are not needed: the project starts its own instances.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_dotnet() {
  if ! command -v dotnet >/dev/null; then
    echo "error: the .NET 10 SDK is required (https://learn.microsoft.com/dotnet/core/install/linux)" >&2
    return 1
  fi
}

# True when something listens on 127.0.0.1:$1.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Waits until 127.0.0.1:$1 accepts connections or $2 seconds pass.
wait_for_port() {
  local port=$1 timeout=${2:-30} i=0
  while ! port_in_use "$port"; do
    i=$((i + 1))
    [ $i -gt $((timeout * 10)) ] && return 1
    sleep 0.1
  done
}

# What the tests, the soak run and the benchmarks need on the machine.
ensure_test_dependencies() {
  ensure_dotnet
  # chromium and chromium-driver: the transparency page is tested in a real browser (Selenium).
  ensure_packages mosquitto influxdb socat chromium chromium-driver
}
