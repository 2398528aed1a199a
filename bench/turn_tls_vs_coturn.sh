#!/usr/bin/env bash
# TURN over TLS: the same uclient load (turnutils_uclient -t -S) against coturn's TLS listener
# and against WebCall's HTTPS port (TURN over TLS shares it with the web app), in one sitting,
# with the ratio of server CPU per relayed message (WebCall / coturn; below 1.0 is cheaper).
#
#   usage: turn_tls_vs_coturn.sh PATH/TO/webcall [ROUNDS] [turn_load.py args...]
#
# Default load: 10 clients x 2000 messages of 120 B every 5 ms each (about 4k messages/s),
# client to client. Both servers get the same ECDSA P-256 certificate (made here). Needs:
# turnserver + turnutils_uclient (Debian package coturn), openssl, python3.
set -euo pipefail
bin=${1:?usage: turn_tls_vs_coturn.sh PATH/TO/webcall [ROUNDS] [turn_load args]}
shift
rounds=3
if [[ ${1:-} =~ ^[0-9]+$ ]]; then rounds=$1; shift; fi
[ $# -gt 0 ] || set -- --clients 10 --messages 2000 --interval-ms 5 --timeout 120
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
secret=bench-secret-$RANDOM$RANDOM
cleanup() { kill "${cot:-}" "${wc:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost \
  -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1

turnserver --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port=23478 \
  --tls-listening-port=25349 --cert="$work/cert.pem" --pkey="$work/key.pem" \
  --min-port=40000 --max-port=44999 --use-auth-secret --static-auth-secret="$secret" \
  --realm=webcall --allow-loopback-peers --no-dtls --no-cli --no-stdout-log \
  --log-file="$work/coturn.log" --pidfile="$work/coturn.pid" >/dev/null 2>&1 &
cot=$!

APP_ENV=dev HOST=127.0.0.1 PORT=28443 DATABASE_URL="sqlite://$work/webcall.db" \
  JWT_SECRET=bench-jwt-secret-0123456789abcdef REGISTRATION_SECRET=bench \
  TLS_CERT_FILE="$work/cert.pem" TLS_KEY_FILE="$work/key.pem" HTTP_REDIRECT_PORT=off \
  TURN_LISTEN=127.0.0.1:33478 TURN_PUBLIC_IP=127.0.0.1 TURN_SECRET="$secret" TURN_REALM=webcall \
  TURN_RELAY_PORT_MIN=45000 TURN_RELAY_PORT_MAX=49999 TURN_ALLOW_LOOPBACK_PEERS=true \
  TURN_USER_QUOTA=1000 TURN_TOTAL_QUOTA=10000 \
  RUST_LOG=warn "$bin" >"$work/webcall.log" 2>&1 &
wc=$!
tls_up() { timeout 2 openssl s_client -connect "127.0.0.1:$1" </dev/null >/dev/null 2>&1; }
for _ in $(seq 30); do tls_up 25349 && tls_up 28443 && break; sleep 0.3; done
kill -0 "$cot" 2>/dev/null && tls_up 25349 || { echo "coturn did not start (TLS)"; tail -5 "$work/coturn.log"; exit 2; }
kill -0 "$wc" 2>/dev/null && tls_up 28443 || { echo "webcall did not start:"; tail -20 "$work/webcall.log"; exit 2; }

for i in $(seq "$rounds"); do
  c=$(python3 "$here/turn_load.py" --pid "$cot" --port 25349 --secret "$secret" --tls "$@" 2>&1 | tail -1) || true
  w=$(python3 "$here/turn_load.py" --pid "$wc" --port 28443 --secret "$secret" --tls "$@" 2>&1 | tail -1) || true
  echo "coturn  $c"
  echo "webcall $w"
  python3 - "$c" "$w" <<'PY'
import json, sys
try:
    c, w = (json.loads(s) for s in sys.argv[1:3])
except ValueError:
    print(f"a load run failed: coturn={sys.argv[1][:200]!r} webcall={sys.argv[2][:200]!r}"); sys.exit(0)
r = w["server_cpu_us_per_msg"] / c["server_cpu_us_per_msg"] if w["server_cpu_us_per_msg"] and c["server_cpu_us_per_msg"] else None
print(f"ratio webcall/coturn cpu-per-msg: {r:.2f}  loss webcall {w['loss_pct']}%, coturn {c['loss_pct']}%"
      if r else f"a server failed: webcall={w} coturn={c}")
PY
done
