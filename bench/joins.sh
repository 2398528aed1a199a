#!/usr/bin/env bash
# The `joins` scenario as a series: for each run a fresh server (a restart's
# reconnect storm is the real case of 200 joins at once), one burst of
# `--peers 200` in rooms of 16, then the server is stopped. With two or more
# binaries the runs alternate between them (A B A B ...), so that they share the
# machine's moods; the summary gives each binary's runs and their median.
#
#   cargo build --release -p webcall -p webcall-bench
#   bench/joins.sh [-n RUNS] [BINARY...]        (default: 10 runs of target/release/webcall)
#
# Each server runs in a session of its own (setsid), as a server started by
# systemd or from another terminal would: Linux's autogroup scheduling then
# shares the two cores between the server and this tool as two programs, not
# as a pool of their threads. All runs use one SQLite file and one set of 200
# accounts, logged in once (their tokens are saved and reused: no password
# hashing on a measured server).
#
# PIN=1 gives the server core 1 and this tool core 0 (taskset), so that they
# never compete for a core: it shows what the sharing costs.
set -euo pipefail

runs=10
if [[ "${1:-}" == "-n" ]]; then
    runs=$2
    shift 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
binaries=("$@")
[[ ${#binaries[@]} -gt 0 ]] || binaries=("$root/target/release/webcall")
tool="$root/target/release/webcall-bench"
port=${PORT:-18000}
server_cpu=()
tool_cpu=()
if [[ "${PIN:-0}" == 1 ]]; then
    server_cpu=(taskset -c 1)
    tool_cpu=(taskset -c 0)
fi
work=$(mktemp -d /tmp/webcall-joins.XXXXXX)
trap 'kill "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true' EXIT

start_server() {
    rm -f "$work/pid"
    APP_ENV=dev HOST=127.0.0.1 PORT=$port DATABASE_URL="sqlite://$work/webcall.db" \
        JWT_SECRET=bench-jwt-secret-0123456789abcdefgh REGISTRATION_SECRET=bench \
        JWT_EXPIRES_MIN=1440 TURN_EMBEDDED=false WS_IDLE_TIMEOUT_SECS=120 RUST_LOG=warn \
        HTTP_MAX_CONNECTIONS_PER_IP=0 WS_MAX_PER_USER=100000 \
        ROOMS_PER_USER=1000000 ROOM_CREATIONS_PER_HOUR=1000000 \
        METRICS_LISTEN=127.0.0.1:0 \
        setsid -f bash -c "echo \$\$ > '$work/pid'; exec ${server_cpu[*]} '$1'" >"$work/server.log" 2>&1
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

# The accounts and their tokens, once.
pid=$(start_server "${binaries[0]}")
"$tool" joins --server "http://127.0.0.1:$port" --peers 200 --token-file "$work/tokens" \
    >/dev/null 2>&1 || true
stop_server "$pid"

echo "run binary connect->welcome_p50 connect->welcome_p99 connect->tcp_p99 connect->101_p99 101->welcome_p99 request->welcome_p99 server_cpu_ms tool_cpu_ms cpu_floor_ms" \
    | tee "$work/runs.txt"
for run in $(seq "$runs"); do
    for binary in "${binaries[@]}"; do
        pid=$(start_server "$binary")
        sleep 1
        "${tool_cpu[@]}" "$tool" joins --server "http://127.0.0.1:$port" --peers 200 --room-size 16 \
            --server-pid "$pid" --token-file "$work/tokens" --baseline 0 2>/dev/null \
            | tail -1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
b = d["burst"]
print(sys.argv[1], sys.argv[2], b["welcome"]["p50_ms"], b["welcome"]["p99_ms"],
      b["tcp_connect"]["p99_ms"], b["upgrade_101"]["p99_ms"], b["upgrade_to_welcome"]["p99_ms"],
      b["request_to_welcome"]["p99_ms"], d["server_cpu_ms"], d["client_cpu_ms"], d.get("cpu_floor_ms"),
      "" if d["welcomed"] == d["peers"] else "NOT-ALL-WELCOMED")
' "$run" "$binary" | tee -a "$work/runs.txt"
        stop_server "$pid"
    done
done

python3 - "$work/runs.txt" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]).read().splitlines()[1:]]
for binary in dict.fromkeys(r[1] for r in rows):
    mine = [r for r in rows if r[1] == binary]
    p99 = [float(r[3]) for r in mine]
    p50 = [float(r[2]) for r in mine]
    cpu = [float(r[8]) for r in mine if r[8] != "None"]
    tool = [float(r[9]) for r in mine if r[9] != "None"]
    floor = [float(r[10]) for r in mine if len(r) > 10 and r[10] != "None"]
    req = [float(r[7]) for r in mine]
    print(f"{binary}: {len(mine)} runs; connect->welcome p99 median {statistics.median(p99):.1f} ms "
          f"(min {min(p99):.1f}, max {max(p99):.1f}), <= 50 ms in {sum(p <= 50 for p in p99)} of {len(p99)}; "
          f"p50 median {statistics.median(p50):.1f} ms; server CPU per burst median "
          f"{statistics.median(cpu) if cpu else float('nan'):.1f} ms")
    print(f"  upgrade request->welcome p99 median {statistics.median(req):.1f} ms "
          f"(min {min(req):.1f}, max {max(req):.1f}), <= 50 ms in {sum(p <= 50 for p in req)} of {len(req)}")
    if floor:
        print(f"  tool CPU per burst median {statistics.median(tool):.1f} ms; CPU floor "
              f"(server + tool CPU / cores) median {statistics.median(floor):.1f} ms "
              f"(min {min(floor):.1f}, max {max(floor):.1f})")
    print("  connect->welcome p99 by run:", ", ".join(f"{p:.1f}" for p in p99))
    print("  request->welcome p99 by run:", ", ".join(f"{p:.1f}" for p in req))
EOF
echo "runs kept in $work/runs.txt"
