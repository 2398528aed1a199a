#!/usr/bin/env bash
# Files in the chat: a 1 GiB upload through the real server, and a burst of small ones.
#
#   cargo build --release -p webcall -p webcall-bench
#   bench/attachments.sh [-n RUNS] [--no-burst] [BINARY]
#                        (default: 3 runs of target/release/webcall, then the burst)
#
# Each run starts a fresh release server (its own temporary data directory: SQLite file and
# ATTACHMENT_DIR, ATTACHMENT_MAX_BYTES=2 GiB, no quotas), registers a user, creates a room,
# and runs `webcall-bench upload --size 1GiB`: the body is generated as it is sent (no file
# on the client's disk or in its memory), the server's RSS (VmRSS) is sampled every 20 ms,
# then the file is downloaded back and its SHA-256 (and the server's ETag) compared with
# what was sent. The burst: 20 clients (20 accounts) upload 5 MiB each at the same moment.
#
# The server runs in a session of its own (setsid), as under systemd. Everything it wrote
# is removed at the end. Needs about 1.1 GiB free under $TMPDIR (default /tmp) per run.
# The JSON line of every run is kept in $OUT (default: a file named at the end).
set -euo pipefail

runs=3
burst=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        -n) runs=$2; shift 2 ;;
        --no-burst) burst=0; shift ;;
        *) break ;;
    esac
done
root=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
binary=${1:-$target/release/webcall}
tool="$target/release/webcall-bench"
port=${PORT:-18100}
for program in "$binary" "$tool"; do
    [[ -x "$program" ]] || { echo "missing $program: cargo build --release -p webcall -p webcall-bench" >&2; exit 2; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/webcall-attachments.XXXXXX")
out=${OUT:-$work.jsonl}
: >"$out"
server_pid=

stop_server() {
    [[ -n "$server_pid" ]] || return 0
    kill "$server_pid" 2>/dev/null || true
    while kill -0 "$server_pid" 2>/dev/null; do sleep 0.1; done
    server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT

# A fresh server on a fresh data directory; sets server_pid.
start_server() {
    local data="$work/data"
    rm -rf "$data" && mkdir -p "$data"
    APP_ENV=dev HOST=127.0.0.1 PORT=$port DATABASE_URL="sqlite://$data/webcall.db" \
        ATTACHMENT_DIR="$data/attachments" ATTACHMENT_MAX_BYTES=2147483648 \
        ATTACHMENT_QUOTA_USER_BYTES=0 ATTACHMENT_QUOTA_TOTAL_BYTES=0 \
        JWT_SECRET=bench-jwt-secret-0123456789abcdefgh REGISTRATION_SECRET=bench \
        TURN_EMBEDDED=false RUST_LOG=warn METRICS_LISTEN=127.0.0.1:0 \
        HTTP_MAX_CONNECTIONS_PER_IP=0 \
        setsid -f bash -c "echo \$\$ > '$work/pid'; exec '$binary'" >"$work/server.log" 2>&1
    for _ in $(seq 100); do
        curl -s -o /dev/null "http://127.0.0.1:$port/healthz" && break
        sleep 0.1
    done
    server_pid=$(cat "$work/pid")
    curl -s -o /dev/null "http://127.0.0.1:$port/healthz" || {
        echo "the server did not start:" >&2
        cat "$work/server.log" >&2
        exit 1
    }
}

# One scenario against a fresh server; its human lines to stderr, its JSON line to $out.
scenario() {
    local label=$1
    shift
    start_server
    if ! "$tool" upload --server "http://127.0.0.1:$port" --server-pid "$server_pid" "$@" \
        >"$work/run.txt" 2>"$work/run.err"; then
        cat "$work/run.txt" "$work/run.err" >&2
        echo "server log:" >&2
        tail -20 "$work/server.log" >&2
        stop_server
        return 1
    fi
    grep -v '^{' "$work/run.txt" | sed "s/^/[$label] /" >&2
    tail -1 "$work/run.txt" | python3 -c 'import json, sys; d = json.load(sys.stdin); d["label"] = sys.argv[1]; print(json.dumps(d))' "$label" >>"$out"
    stop_server
}

for run in $(seq "$runs"); do
    scenario "1GiB#$run" --size 1GiB
done
if [[ "$burst" == 1 ]]; then
    scenario "burst" --size 5MiB --peers 20
fi

python3 - "$out" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
mib = lambda kib: "-" if kib is None else f"{kib / 1024:.1f}"
print()
print("| run | clients × size | RSS before | peak (upload) | after upload | peak (download) | after | upload | download | SHA-256 |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    rss, up, down = r["rss_kib"], r["upload"], r["download"]
    delta = lambda peak: "" if None in (peak, rss["before"]) else f" (+{(peak - rss['before']) / 1024:.1f})"
    size = r["size"]
    size = f"{size / 2**30:g} GiB" if size >= 2**30 else f"{size / 2**20:g} MiB"
    print(f"| {r['label']} | {r['clients']} × {size} | {mib(rss['before'])} MiB | {mib(rss['upload_peak'])}{delta(rss['upload_peak'])} MiB"
          f" | {mib(rss['after_upload'])} MiB | {mib(rss['download_peak'])}{delta(rss['download_peak'])} MiB | {mib(rss['after'])} MiB"
          f" | {up['mb_per_s']:.0f} MB/s, {up['wall_s']:.2f} s | {down['mb_per_s']:.0f} MB/s, {down['wall_s']:.2f} s"
          f" | {down['sha256_match']}/{r['clients']} |")
EOF
echo "JSON lines: $out" >&2
