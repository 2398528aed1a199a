#!/usr/bin/env bash
# Same TURN load against coturn and against WebCall's embedded relay, in one sitting, and the ratio
# of server CPU per relayed message (WebCall / coturn; below 1.0 means WebCall is cheaper).
#
#   usage: turn_vs_coturn.sh PATH/TO/webcall [ROUNDS] [turn_load.py args...]   (ROUNDS defaults to 3)
#
# Default load (no args): 50 clients x 4000 messages of 120 B, unpaced (about 18k messages/s on a
# 2-core box), ChannelData over UDP. Measured 2026-11-27: coturn 4.6.1 relays it with 0 loss at
# about 7 us CPU per message; the webrtc-rs `turn` 0.17.2 server as shipped loses 0.5-7.6 % and
# spends about 1.3x coturn's CPU per delivered message.
#
# Extra turn_load.py args pass through: --tcp, --send-indications, --clients ... and --peer
# 127.0.0.1:23480, for which this script starts coturn's echo peer (turnutils_peer) there.
# (A copy of ../shared/tools/turn_vs_coturn.sh that also starts the echo peer.)
#
# WebCall is started TURN-focused on loopback with the documented environment variables
# (TURN_LISTEN, TURN_PUBLIC_IP, TURN_SECRET, TURN_ALLOW_LOOPBACK_PEERS, ...). coturn is started with
# the equivalent flags. Needs: turnserver + turnutils_uclient (Debian package coturn), python3.
set -euo pipefail
bin=${1:?usage: turn_vs_coturn.sh PATH/TO/webcall [ROUNDS] [turn_load args]}
shift
rounds=3
if [[ ${1:-} =~ ^[0-9]+$ ]]; then rounds=$1; shift; fi
[ $# -gt 0 ] || set -- --clients 50 --messages 4000 --interval-ms 0 --timeout 90
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
secret=bench-secret-$RANDOM$RANDOM
cleanup() { kill "${cot:-}" "${wc:-}" "${echo_peer:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [[ " $* " == *" --peer 127.0.0.1:23480 "* ]]; then
  turnutils_peer -L 127.0.0.1 -p 23480 >/dev/null 2>&1 &
  echo_peer=$!
fi

turnserver --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port=23478 \
  --min-port=40000 --max-port=44999 --use-auth-secret --static-auth-secret="$secret" \
  --realm=webcall --allow-loopback-peers --no-tls --no-dtls --no-cli --no-stdout-log \
  --log-file="$work/coturn.log" --pidfile="$work/coturn.pid" >/dev/null 2>&1 &
cot=$!

APP_ENV=dev HOST=127.0.0.1 PORT=28080 DATABASE_URL="sqlite://$work/webcall.db" \
  JWT_SECRET=bench-jwt-secret-0123456789abcdef REGISTRATION_SECRET=bench \
  TURN_LISTEN=127.0.0.1:33478 TURN_PUBLIC_IP=127.0.0.1 TURN_SECRET="$secret" TURN_REALM=webcall \
  TURN_RELAY_PORT_MIN=45000 TURN_RELAY_PORT_MAX=49999 TURN_ALLOW_LOOPBACK_PEERS=true \
  TURN_USER_QUOTA=1000 TURN_TOTAL_QUOTA=10000 \
  RUST_LOG=warn "$bin" >"$work/webcall.log" 2>&1 &
wc=$!
# wait until both answer a STUN Binding request (at most 10 s)
stun_up() { python3 -c 'import os,socket,sys
s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(0.3)
s.sendto(bytes.fromhex("000100002112a442")+os.urandom(12),("127.0.0.1",int(sys.argv[1])))
s.recvfrom(2048)' "$1" 2>/dev/null; }
for _ in $(seq 30); do stun_up 23478 && stun_up 33478 && break; sleep 0.3; done
kill -0 "$cot" 2>/dev/null && stun_up 23478 || { echo "coturn did not start"; exit 2; }
kill -0 "$wc" 2>/dev/null && stun_up 33478 || { echo "webcall did not start or does not answer STUN on 33478:"; tail -20 "$work/webcall.log"; exit 2; }

for i in $(seq "$rounds"); do
  c=$(python3 "$here/turn_load.py" --pid "$cot" --port 23478 --secret "$secret" "$@" 2>&1 | tail -1) || true
  w=$(python3 "$here/turn_load.py" --pid "$wc" --port 33478 --secret "$secret" "$@" 2>&1 | tail -1) || true
  echo "coturn  $c"
  echo "webcall $w"
  python3 - "$c" "$w" <<'PY'
import json, sys
try:
    c, w = (json.loads(s) for s in sys.argv[1:3])
except ValueError:
    print(f"a load run failed: coturn={sys.argv[1][:200]!r} webcall={sys.argv[2][:200]!r}"); sys.exit(0)
r = w["server_cpu_us_per_msg"] / c["server_cpu_us_per_msg"] if w["server_cpu_us_per_msg"] and c["server_cpu_us_per_msg"] else None
lossless = bool(w["sent"]) and w["received"] == w["sent"] and c["received"] == c["sent"]
print(f"ratio webcall/coturn cpu-per-msg: {r:.2f}" if r and lossless else
      f"LOSSY webcall loss {w['loss_pct']}% (coturn {c['loss_pct']}%), cpu ratio {r:.2f}" if r else f"webcall failed: {w}")
PY
done
