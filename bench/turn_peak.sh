#!/usr/bin/env bash
# Peak relayed messages per second: K coturn turnutils_uclient loads at once against one WebCall
# relay with L UDP listeners (TURN_UDP_LISTENERS), each load 50 clients x 4000 messages of 120 B,
# unpaced, client to client (or --peer: through coturn's echo peer). Prints each load's JSON line
# (from turn_load.py) and a total: messages delivered, loss, wall time, messages/s, server CPU.
#
#   usage: turn_peak.sh PATH/TO/webcall LISTENERS LOADS [turn_load.py args...]
#
# The load generators run on the same machine as the server and take CPU from it: the number is
# the peak of this box with its own load, not of the relay alone. Needs coturn's tools, python3.
set -euo pipefail
bin=${1:?usage: turn_peak.sh PATH/TO/webcall LISTENERS LOADS [turn_load args]}
listeners=${2:?LISTENERS}
loads=${3:?LOADS}
shift 3
[ $# -gt 0 ] || set -- --clients 50 --messages 4000 --interval-ms 0 --timeout 120
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
secret=bench-secret-$RANDOM$RANDOM
cleanup() { kill "${wc:-}" "${echo_peer:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
if [[ " $* " == *" --peer 127.0.0.1:23480 "* ]]; then
  turnutils_peer -L 127.0.0.1 -p 23480 >/dev/null 2>&1 &
  echo_peer=$!
fi

APP_ENV=dev HOST=127.0.0.1 PORT=28080 DATABASE_URL="sqlite://$work/webcall.db" \
  JWT_SECRET=bench-jwt-secret-0123456789abcdef REGISTRATION_SECRET=bench \
  TURN_LISTEN=127.0.0.1:33478 TURN_PUBLIC_IP=127.0.0.1 TURN_SECRET="$secret" TURN_REALM=webcall \
  TURN_RELAY_PORT_MIN=40000 TURN_RELAY_PORT_MAX=59999 TURN_ALLOW_LOOPBACK_PEERS=true \
  TURN_USER_QUOTA=1000 TURN_TOTAL_QUOTA=10000 TURN_UDP_LISTENERS="$listeners" \
  RUST_LOG=warn "$bin" >"$work/webcall.log" 2>&1 &
wc=$!
sleep 2
kill -0 "$wc" || { echo "webcall did not start:"; cat "$work/webcall.log"; exit 2; }

cpu() { awk '{print $14 + $15}' "/proc/$wc/stat"; }
cpu0=$(cpu)
t0=$(date +%s.%N)
for i in $(seq "$loads"); do
  python3 "$here/turn_load.py" --pid "$wc" --port 33478 --secret "$secret" --user "load$i" "$@" \
    >"$work/load$i.json" 2>&1 &
done
wait $(jobs -p | grep -v "^$wc$" | grep -v "^${echo_peer:-x}$") 2>/dev/null || true
t1=$(date +%s.%N)
cpu1=$(cpu)
cat "$work"/load*.json
python3 - "$work" "$t0" "$t1" "$cpu0" "$cpu1" "$listeners" "$loads" <<'PY'
import glob, json, os, sys
work, t0, t1, c0, c1, listeners, loads = sys.argv[1:]
runs = [json.loads(open(f).read().strip().splitlines()[-1]) for f in sorted(glob.glob(f"{work}/load*.json"))]
sent = sum(r["sent"] for r in runs)
recv = sum(r["received"] for r in runs)
wall = float(t1) - float(t0)
cpu = (int(c1) - int(c0)) / os.sysconf("SC_CLK_TCK")
print(json.dumps({
    "listeners": int(listeners), "loads": int(loads), "sent": sent, "received": recv,
    "loss_pct": round(100.0 * (sent - recv) / sent, 3) if sent else None,
    "wall_s": round(wall, 2), "msgs_per_s": round(recv / wall), "server_cpu_s": round(cpu, 2),
    "server_cores_busy": round(cpu / wall, 2),
    "server_cpu_us_per_msg": round(1e6 * cpu / recv, 2) if recv else None,
}))
PY
