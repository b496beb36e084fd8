#!/usr/bin/env bash
# Installs and starts what the suite needs on a fresh Debian machine: the Docker engine (Debian docker.io,
# started here when none is running), Prometheus, Alertmanager and Pushgateway (the suite starts its own
# instances), wrk (load generator peer in benchmarks), debootstrap (the build checks make their base images
# locally: fixtures/images/). Idempotent and quick when everything is present.
set -euo pipefail

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v wrk >/dev/null || need+=(wrk)
# Headless Chromium renders report.html in a test; DejaVu gives its screenshots readable text.
command -v chromium >/dev/null || need+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
command -v debootstrap >/dev/null || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
# python3 + pip fetch AWS's Runtime Interface Emulator (aws-sam-cli wheel) for the local target's conformance test.
command -v python3 >/dev/null || need+=(python3 python3-pip)
# The securebase profile's portal stack: Redis, a throwaway PostgreSQL cluster with pg_stat_statements
# (postgresql-contrib), nginx as the CDN. The suite starts its own instances on free ports.
command -v redis-server >/dev/null || need+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql postgresql-contrib)
compgen -G "/usr/lib/postgresql/*/lib/pg_stat_statements.so" >/dev/null || need+=(postgresql-contrib)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${need[*]}; run as root or install them: apt-get install ${need[*]}" >&2
    exit 2
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The Debian packages start their own services on some machines; the suite runs its own instances on free
# ports, so the packaged ones are not needed.
for svc in prometheus prometheus-alertmanager prometheus-pushgateway redis-server postgresql nginx; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done

if ! docker info >/dev/null 2>&1; then
  echo "setup: starting the Docker engine (dockerd)"
  mkdir -p /var/log
  nohup dockerd >/var/log/perf-acceptance-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    echo "setup: the Docker engine did not start within 60 s; see /var/log/perf-acceptance-dockerd.log" >&2
    tail -n 20 /var/log/perf-acceptance-dockerd.log >&2 || true
    exit 2
  fi
fi
# moto_server (AWS API emulator for the aws target's tests) and cbor2 (its CBOR shim), pinned, in a venv under target/ so it
# never touches the system Python; the tests run target/tools/moto/bin/python (or $MOTO_PYTHON).
MOTO_VERSION=5.2.5
CBOR2_VERSION=6.3.0
moto_venv="$(cd "$(dirname "$0")/.." && pwd)/target/tools/moto"
if ! "$moto_venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('moto') != '$MOTO_VERSION' or m.version('cbor2') != '$CBOR2_VERSION')" 2>/dev/null; then
  command -v python3 >/dev/null || { echo "setup: python3 is needed for moto_server (apt-get install python3 python3-venv)" >&2; exit 2; }
  echo "setup: installing moto[server]==$MOTO_VERSION into $moto_venv"
  rm -rf "$moto_venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install -q --disable-pip-version-check "moto[server]==$MOTO_VERSION" "cbor2==$CBOR2_VERSION"
fi

# Lighthouse (the securebase profile's performance score), pinned: Lighthouse 13 needs Node 22, Debian 12 has
# Node 20. Installed into target/tools/lighthouse with npm; it drives the Chromium the suite starts.
LIGHTHOUSE_VERSION=12.2.3
lh_dir="$(cd "$(dirname "$0")/.." && pwd)/target/tools/lighthouse"
if [ "$(node -p "require('$lh_dir/node_modules/lighthouse/package.json').version" 2>/dev/null)" != "$LIGHTHOUSE_VERSION" ]; then
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
      echo "setup: npm is needed for lighthouse; run as root or apt-get install nodejs npm" >&2
      exit 2
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "setup: installing lighthouse@$LIGHTHOUSE_VERSION into $lh_dir"
  mkdir -p "$lh_dir"
  (cd "$lh_dir" && npm i -E "lighthouse@$LIGHTHOUSE_VERSION" --no-audit --no-fund --loglevel=error >/dev/null)
fi

echo "setup: docker $(docker version --format '{{.Server.Version}}'), $(prometheus --version 2>&1 | head -n1)"
