#!/usr/bin/env python3
"""Drive a TURN server with coturn's turnutils_uclient and report loss and the server's CPU cost.

The load is real TURN traffic from a client nobody in this project wrote: each of --clients
allocates a relay with TURN REST API credentials (HMAC-SHA1 over "<expiry>:<user>" with --secret),
and with -y the clients send to each other's relayed addresses, so every message crosses the relay.
With --peer HOST:PORT they send to that peer instead (coturn's turnutils_peer echoes every datagram
back), so no message goes from one relay of the server to another.

(A copy of ../shared/tools/turn_load.py with --peer added, so the repository holds what its
benchmark numbers were measured with.)

Prints one JSON line: messages sent/received, loss, wall time, and the CPU time the server process
(--pid, all threads) spent, as microseconds per relayed message. Compare two servers by running
both under the same load in one sitting (see turn_vs_coturn.sh); absolute numbers drift.

Needs: turnutils_uclient (Debian package coturn).
"""
import argparse, json, os, re, subprocess, sys, time

def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()

def cpu_seconds(pid):
    """utime + stime of the process (all its threads) and of every live descendant process."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                children.setdefault(int(_stat(d)[1]), []).append(int(d))
            except (OSError, IndexError):
                pass
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            f = _stat(p)
            total += int(f[11]) + int(f[12])
        except OSError:
            continue
        todo += children.get(p, [])
    return total / os.sysconf("SC_CLK_TCK")

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pid", type=int, required=True, help="server process id (its CPU is measured)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3478)
    p.add_argument("--secret", required=True, help="TURN REST API shared secret")
    p.add_argument("--user", default="loadtest")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--messages", type=int, default=2000, help="per client")
    p.add_argument("--size", type=int, default=120, help="payload bytes")
    p.add_argument("--interval-ms", type=int, default=1, help="per-client send interval")
    p.add_argument("--tcp", action="store_true", help="client-to-server over TCP (relay stays UDP)")
    p.add_argument("--tls", action="store_true", help="client-to-server over TLS (relay stays UDP)")
    p.add_argument("--send-indications", action="store_true", help="Send indications instead of ChannelData")
    p.add_argument("--peer", help="HOST:PORT of an echo peer (turnutils_peer) instead of client-to-client")
    p.add_argument("--timeout", type=int, default=120)
    a = p.parse_args()

    if a.peer:
        peer_host, peer_port = a.peer.rsplit(":", 1)
        target = ["-e", peer_host, "-r", peer_port]
    else:
        target = ["-y"]
    cmd = ["turnutils_uclient", *target, "-c", "-m", str(a.clients), "-n", str(a.messages), "-l", str(a.size),
           "-z", str(a.interval_ms), "-W", a.secret, "-u", a.user, "-p", str(a.port)]
    if a.tcp or a.tls:
        cmd.append("-t")
    if a.tls:
        cmd.append("-S")
    if a.send_indications:
        cmd.append("-s")
    cmd.append(a.host)
    cpu0, t0 = cpu_seconds(a.pid), time.monotonic()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout).stdout
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        out += "\nTIMEOUT"
    wall, cpu = time.monotonic() - t0, cpu_seconds(a.pid) - cpu0
    sent = recv = 0
    m = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)", out)
    if m:
        sent, recv = map(int, m[-1])
    lost = re.findall(r"Total lost packets (\d+)", out)
    res = {
        "transport": "tls" if a.tls else "tcp" if a.tcp else "udp",
        "mode": "send-indication" if a.send_indications else "channel-data",
        "peers": "echo-peer" if a.peer else "client-to-client",
        "clients": a.clients, "sent": sent, "received": recv,
        "loss_pct": round(100.0 * (sent - recv) / sent, 3) if sent else 100.0,
        "lost_reported": int(lost[-1]) if lost else None,
        "wall_s": round(wall, 2), "server_cpu_s": round(cpu, 3),
        "server_cpu_us_per_msg": round(1e6 * cpu / recv, 2) if recv else None,
        "timed_out": "TIMEOUT" in out,
    }
    print(json.dumps(res))
    return 0 if sent and recv == sent and not res["timed_out"] else 1

if __name__ == "__main__":
    sys.exit(main())
