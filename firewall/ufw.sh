#!/usr/bin/env bash
# WebCall host firewall with ufw: allow SSH, HTTP/HTTPS (reverse proxy), STUN/TURN on
# UDP+TCP, the UDP relay range, the UDP port of routed calls (SFU); deny every other
# inbound connection; allow outbound.
#
# Usage:
#   sudo firewall/ufw.sh [--dry-run] [--env-file FILE]
#
#   --dry-run        print the ufw commands instead of running them (no root, no ufw needed)
#   --env-file FILE  read TURN_LISTEN, TURN_RELAY_PORT_MIN, TURN_RELAY_PORT_MAX and SFU_UDP_PORT from
#                    WebCall's environment file (e.g. /etc/webcall/webcall.env), so the
#                    firewall opens exactly what the server uses
#
# Ports (environment variables; explicit ones win over the env file):
#   SSH_PORT   (22)     your SSH port: allowed first, before ufw is enabled
#   TURN_PORT  (3478)   default: the port of TURN_LISTEN
#   RELAY_MIN  (49152)  default: TURN_RELAY_PORT_MIN
#   RELAY_MAX  (65535)  default: TURN_RELAY_PORT_MAX
#   SFU_PORT   (3479)   default: SFU_UDP_PORT (0 there: no rule, the port is not fixed)
#
# Example: SSH on 2222 and a reduced relay range
#   sudo SSH_PORT=2222 RELAY_MIN=50000 RELAY_MAX=50999 firewall/ufw.sh --dry-run
#
# Existing ufw rules are kept (this script only adds). Note that ports Docker publishes
# bypass ufw; deploy/docker-compose.yml publishes PostgreSQL and Redis on 127.0.0.1 only
# and runs WebCall on the host network, so ufw does govern WebCall's ports.
set -euo pipefail

usage() { sed -n '5,11p' "$0" | sed 's/^# \{0,1\}//'; }

dry_run=false
env_file=""
while (($#)); do
    case "$1" in
        --dry-run | -n) dry_run=true ;;
        --env-file)
            [[ $# -ge 2 ]] || { echo "ufw.sh: --env-file needs a file" >&2; exit 2; }
            env_file=$2
            shift
            ;;
        -h | --help) usage; exit 0 ;;
        *) echo "ufw.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

# One value from a KEY=VALUE env file (last one wins; quotes removed). The file is not
# sourced: it is data, not a script.
env_value() {
    local key=$1 line value=""
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line#"${line%%[![:space:]]*}"}
        [[ $line == "$key="* ]] || continue
        value=${line#*=}
        value=${value%\"}; value=${value#\"}
        value=${value%\'}; value=${value#\'}
    done <"$env_file"
    printf '%s' "$value"
}

turn_listen=${TURN_LISTEN:-}
relay_min_server=${TURN_RELAY_PORT_MIN:-}
relay_max_server=${TURN_RELAY_PORT_MAX:-}
sfu_server=${SFU_UDP_PORT:-}
if [[ -n $env_file ]]; then
    [[ -r $env_file ]] || { echo "ufw.sh: cannot read $env_file" >&2; exit 2; }
    [[ -n $turn_listen ]] || turn_listen=$(env_value TURN_LISTEN)
    [[ -n $relay_min_server ]] || relay_min_server=$(env_value TURN_RELAY_PORT_MIN)
    [[ -n $relay_max_server ]] || relay_max_server=$(env_value TURN_RELAY_PORT_MAX)
    [[ -n $sfu_server ]] || sfu_server=$(env_value SFU_UDP_PORT)
fi

SSH_PORT=${SSH_PORT:-22}
TURN_PORT=${TURN_PORT:-}
if [[ -z $TURN_PORT && -n $turn_listen ]]; then
    TURN_PORT=${turn_listen##*:}   # 0.0.0.0:3478, [::]:3478 and a list of both alike
fi
TURN_PORT=${TURN_PORT:-3478}
RELAY_MIN=${RELAY_MIN:-${relay_min_server:-49152}}
RELAY_MAX=${RELAY_MAX:-${relay_max_server:-65535}}
SFU_PORT=${SFU_PORT:-${sfu_server:-3479}}

for name in SSH_PORT TURN_PORT RELAY_MIN RELAY_MAX; do
    value=${!name}
    if ! [[ $value =~ ^[0-9]+$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
        echo "ufw.sh: $name must be a port number (1-65535), got '$value'" >&2
        exit 2
    fi
done
if ! [[ $SFU_PORT =~ ^[0-9]+$ ]] || ((10#$SFU_PORT > 65535)); then
    echo "ufw.sh: SFU_PORT must be a port number (0-65535), got '$SFU_PORT'" >&2
    exit 2
fi
if ((10#$RELAY_MIN > 10#$RELAY_MAX)); then
    echo "ufw.sh: RELAY_MIN ($RELAY_MIN) is above RELAY_MAX ($RELAY_MAX)" >&2
    exit 2
fi

# Lock-out guard: if sshd is configured on other ports than SSH_PORT, say so, and refuse
# to enable the firewall for real.
if command -v sshd >/dev/null 2>&1; then
    sshd_ports=$(sshd -T 2>/dev/null | awk '$1 == "port" { print $2 }' | sort -un | tr '\n' ' ') || sshd_ports=""
    if [[ -n $sshd_ports && " $sshd_ports" != *" $SSH_PORT "* ]]; then
        echo "ufw.sh: sshd listens on port(s) ${sshd_ports% } but SSH_PORT=$SSH_PORT; set SSH_PORT" >&2
        $dry_run || exit 1
    fi
fi

# A word as the shell would need it typed: bare when safe, else in single quotes.
shell_word() {
    if [[ $1 =~ ^[A-Za-z0-9_./:=+,-]+$ ]]; then
        printf '%s' "$1"
    else
        printf "'%s'" "${1//\'/\'\\\'\'}"
    fi
}

run() {
    if $dry_run; then
        local line="" word
        for word in "$@"; do
            line+="${line:+ }$(shell_word "$word")"
        done
        printf '%s\n' "$line"
    else
        "$@"
    fi
}

if ! $dry_run; then
    if ((EUID != 0)); then
        echo "ufw.sh: run as root (or with --dry-run)" >&2
        exit 1
    fi
    command -v ufw >/dev/null 2>&1 || { echo "ufw.sh: ufw is not installed (apt-get install ufw)" >&2; exit 1; }
fi

# SSH first: it is in place before anything is denied.
run ufw allow "$SSH_PORT/tcp" comment 'SSH'
run ufw default deny incoming
run ufw default allow outgoing
run ufw allow 80/tcp comment 'HTTP (ACME, redirect)'
run ufw allow 443/tcp comment 'HTTPS (reverse proxy)'
run ufw allow "$TURN_PORT/udp" comment 'WebCall STUN/TURN'
run ufw allow "$TURN_PORT/tcp" comment 'WebCall STUN/TURN over TCP'
if ((10#$RELAY_MIN == 10#$RELAY_MAX)); then
    run ufw allow "$RELAY_MIN/udp" comment 'WebCall TURN relay'
else
    run ufw allow "$RELAY_MIN:$RELAY_MAX/udp" comment 'WebCall TURN relay'
fi
if ((10#$SFU_PORT > 0)); then
    run ufw allow "$SFU_PORT/udp" comment 'WebCall routed calls (SFU)'
fi
run ufw --force enable
run ufw status verbose
