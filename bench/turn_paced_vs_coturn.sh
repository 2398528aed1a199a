#!/usr/bin/env bash
# coturn and WebCall under the same evenly paced load from our own generator (turn-load), in one
# sitting: for each rate and mode, one run against each server; prints turn-load's JSON lines and
# the ratio of server CPU per delivered message (WebCall / coturn; below 1.0 means cheaper).
#
#   usage: turn_paced_vs_coturn.sh PATH/TO/webcall PATH/TO/turn-load [RATES] [MODES]
#   e.g.   bench/turn_paced_vs_coturn.sh target/release/webcall target/release/turn-load "20000 50000" "udp echo tcp"
#
# Modes: udp (client pairs relaying to each other over UDP), echo (each client through the relay
# to an echo socket of turn-load's), tcp (client pairs, client-to-server over TCP).
# Evenly paced traffic is what many calls add up to; turn_vs_coturn.sh's uclient load comes in
# bursts instead, which both servers handle more cheaply per message.
# Extra environment for WebCall: WEBCALL_ENV="TURN_UDP_LISTENERS=1" and the like.
# Needs: turnserver (Debian package coturn).
set -euo pipefail
bin=${1:?usage: turn_paced_vs_coturn.sh PATH/TO/webcall PATH/TO/turn-load [RATES] [MODES]}
load=${2:?PATH/TO/turn-load}
rates=${3:-20000 50000}
modes=${4:-udp echo tcp}
work=$(mktemp -d)
secret=bench-secret-$RANDOM$RANDOM
cleanup() { kill "${cot:-}" "${wc:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

turnserver --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port=23478 \
  --min-port=30000 --max-port=39999 --use-auth-secret --static-auth-secret="$secret" \
  --realm=webcall --allow-loopback-peers --no-tls --no-dtls --no-cli --no-stdout-log \
  --log-file="$work/coturn.log" --pidfile="$work/coturn.pid" >/dev/null 2>&1 &
cot=$!
# shellcheck disable=SC2086
env ${WEBCALL_ENV:-} APP_ENV=dev HOST=127.0.0.1 PORT=28080 DATABASE_URL="sqlite://$work/webcall.db" \
  JWT_SECRET=bench-jwt-secret-0123456789abcdef REGISTRATION_SECRET=bench \
  TURN_LISTEN=127.0.0.1:33478 TURN_PUBLIC_IP=127.0.0.1 TURN_SECRET="$secret" TURN_REALM=webcall \
  TURN_RELAY_PORT_MIN=40000 TURN_RELAY_PORT_MAX=49999 TURN_ALLOW_LOOPBACK_PEERS=true \
  TURN_USER_QUOTA=1000 TURN_TOTAL_QUOTA=10000 RUST_LOG=warn "$bin" >"$work/webcall.log" 2>&1 &
wc=$!
sleep 3
kill -0 "$cot" || { echo "coturn did not start"; exit 2; }
kill -0 "$wc" || { echo "webcall did not start:"; cat "$work/webcall.log"; exit 2; }

for rate in $rates; do
  for mode in $modes; do
    case $mode in
      udp) flags=() ;;
      echo) flags=(--echo) ;;
      tcp) flags=(--tcp) ;;
      *) echo "unknown mode $mode"; exit 2 ;;
    esac
    c=$("$load" --server 127.0.0.1:23478 --secret "$secret" --pairs 25 --rate "$rate" --duration 10 \
      --server-pid "$cot" "${flags[@]}" 2>/dev/null | tail -1) || c='{}'
    w=$("$load" --server 127.0.0.1:33478 --secret "$secret" --pairs 25 --rate "$rate" --duration 10 \
      --server-pid "$wc" "${flags[@]}" 2>/dev/null | tail -1) || w='{}'
    echo "coturn  $mode $rate $c"
    echo "webcall $mode $rate $w"
    python3 - "$c" "$w" <<'PY'
import json, sys
c, w = (json.loads(s) for s in sys.argv[1:3])
key = "server_cpu_us_per_msg"
if c.get(key) and w.get(key):
    print(f"ratio webcall/coturn cpu-per-msg: {w[key] / c[key]:.2f}  "
          f"(loss coturn {c['loss_pct']:.3f} %, webcall {w['loss_pct']:.3f} %)")
else:
    print("a run failed")
PY
  done
done
