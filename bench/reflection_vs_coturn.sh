#!/usr/bin/env bash
# Reflection ratios (bytes answered per byte of an unauthenticated request, over UDP) of coturn
# and WebCall, in one sitting: bench/reflection.py against each.
#
#   usage: reflection_vs_coturn.sh PATH/TO/webcall
#
# Needs turnserver (Debian package coturn) and python3.
set -euo pipefail
bin=${1:?usage: reflection_vs_coturn.sh PATH/TO/webcall}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
secret=bench-secret-$RANDOM$RANDOM
cleanup() { kill "${cot:-}" "${wc:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

turnserver --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port=23478 \
  --min-port=40000 --max-port=44999 --use-auth-secret --static-auth-secret="$secret" \
  --realm=webcall --no-tls --no-dtls --no-cli --no-stdout-log \
  --log-file="$work/coturn.log" --pidfile="$work/coturn.pid" >/dev/null 2>&1 &
cot=$!

APP_ENV=dev HOST=127.0.0.1 PORT=28080 HTTPS=false DATABASE_URL="sqlite://$work/webcall.db" \
  JWT_SECRET=bench-jwt-secret-0123456789abcdef REGISTRATION_SECRET=bench \
  TURN_LISTEN=127.0.0.1:33478 TURN_PUBLIC_IP=127.0.0.1 TURN_SECRET="$secret" TURN_REALM=webcall \
  RUST_LOG=warn "$bin" >"$work/webcall.log" 2>&1 &
wc=$!
sleep 2
echo "== coturn $(turnserver --version 2>/dev/null | head -1)"
python3 "$here/reflection.py" 127.0.0.1:23478
echo "== WebCall"
python3 "$here/reflection.py" 127.0.0.1:33478
