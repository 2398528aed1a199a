#!/usr/bin/env bash
# Idle peers held by one server process, the clients spread over several
# processes (each process may open at most `ulimit -Hn` files: 20,000 on the
# bench machine, so 19,000 peers need the server's whole budget and more than
# one client process).
#
#   cargo build --release -p webcall -p webcall-bench
#   bench/capacity.sh [PEERS] [BINARY]      (default: 19000 peers, target/release/webcall)
#
# PROCS (default 4) client processes of `webcall-bench capacity`, rooms of 16.
# The users log in once on a first server; the measured server is a fresh one on
# the same database, so its RSS holds no password hashing. RSS is read before the
# clients start and once every peer is connected (the server's open files say so)
# and settled; per peer = the difference / peers.
set -euo pipefail

peers=${1:-19000}
root=$(cd "$(dirname "$0")/.." && pwd)
server=${2:-$root/target/release/webcall}
tool="$root/target/release/webcall-bench"
procs=${PROCS:-4}
port=${PORT:-18100}
ulimit -n "$(ulimit -Hn)"
work=$(mktemp -d /tmp/webcall-capacity.XXXXXX)
trap 'kill "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true' EXIT

start_server() {
    rm -f "$work/pid"
    APP_ENV=dev HOST=127.0.0.1 PORT=$port DATABASE_URL="sqlite://$work/webcall.db" \
        JWT_SECRET=bench-jwt-secret-0123456789abcdefgh REGISTRATION_SECRET=bench \
        JWT_EXPIRES_MIN=1440 TURN_EMBEDDED=false WS_IDLE_TIMEOUT_SECS=120 RUST_LOG=warn \
        HTTP_MAX_CONNECTIONS_PER_IP=0 WS_MAX_PER_USER=100000 \
        setsid -f bash -c "ulimit -n \$(ulimit -Hn); echo \$\$ > '$work/pid'; exec '$server'" \
        >"$work/server.log" 2>&1
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
        sleep 0.1
    done
    cat "$work/pid"
}

stop_server() {
    kill "$1"
    while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
}

rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }

pid=$(start_server)
"$tool" capacity --server "http://127.0.0.1:$port" --peers 1 --users 100 \
    --token-file "$work/tokens" --settle 0 --hold 0 >/dev/null 2>&1
stop_server "$pid"
pid=$(start_server)
sleep 2
before=$(rss "$pid")
base_fds=$(fds "$pid")
for i in $(seq "$procs"); do
    share=$(( peers / procs + (i <= peers % procs ? 1 : 0) ))
    "$tool" capacity --server "http://127.0.0.1:$port" --peers "$share" --users 100 \
        --token-file "$work/tokens" --settle 40 --hold 20 >"$work/client$i.out" 2>"$work/client$i.err" &
done
for _ in $(seq 240); do
    [[ $(( $(fds "$pid") - base_fds )) -ge $peers ]] && break
    sleep 0.5
done
sleep 10
held=$(( $(fds "$pid") - base_fds ))
settled=$(rss "$pid")
wait
alive=0
for i in $(seq "$procs"); do
    n=$(tail -n1 "$work/client$i.out" | grep -o '"alive_after_hold":[0-9]*' | cut -d: -f2)
    alive=$(( alive + ${n:-0} ))
done
echo "peers asked $peers; connections open on the server when measured: $held; alive after the hold: $alive"
echo "server RSS before ${before} KiB, with the peers ${settled} KiB: $(( settled - before )) KiB," \
    "$(awk "BEGIN {printf \"%.1f\", ($settled - $before) / $held}") KiB per peer"
