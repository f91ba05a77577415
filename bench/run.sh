#!/usr/bin/env bash
# queuejob against its peers, side by side, from scratch (see bench/README.md).
#
#   bash bench/run.sh                 # full run: 3 rounds, every system and workload
#   bash bench/run.sh --quick         # small sizes, one round
#   bash bench/run.sh --help          # every option
#
# 1. installs PostgreSQL's server binaries and redis-server with apt if they are missing
# 2. creates bench/.venv-peers and installs requirements-peers.txt and queuejob (-e .)
# 3. runs python -m bench.compare, which starts PostgreSQL and Redis on free loopback
#    ports, runs the rounds, writes bench/results/ and stops everything it started,
#    also on Ctrl-C or failure
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

for arg in "$@"; do
    if [ "$arg" = -h ] || [ "$arg" = --help ]; then
        if [ -x bench/.venv-peers/bin/python ]; then
            exec bench/.venv-peers/bin/python -m bench.compare --help
        fi
    fi
done

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
    log "installing PostgreSQL server binaries (apt: postgresql)"
    apt_install postgresql
fi
if ! command -v redis-server >/dev/null; then
    log "installing redis-server (apt)"
    apt_install redis-server
fi

PYTHON=${PYTHON:-python3}
VENV=bench/.venv-peers
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
pip_install() {  # pip's exit status is kept; its noise about missing index folders is not
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$@" \
        2> >(grep -v "^WARNING: Location" >&2)
}
log "installing the pinned peers and queuejob into $VENV"
pip_install -r bench/requirements-peers.txt
pip_install -e .
"$VENV/bin/python" -m pip check >&2 || log "pip check reported problems (above)"

exec "$VENV/bin/python" -m bench.compare "$@"
