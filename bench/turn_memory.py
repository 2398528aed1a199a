#!/usr/bin/env python3
"""Memory of a TURN server under an unauthenticated Allocate flood and under allocation churn.

Two scenarios against a running server (WebCall's embedded relay or coturn, any server with
TURN REST API credentials), each reading the server's RSS (VmRSS of /proc/PID/status):

  flood  --requests N from --sockets S source ports: Allocate requests without credentials, as
         fast as the answers come back. A server that keeps state per unauthenticated request
         (a nonce per request, say) grows; a flat one does not.
  churn  --rounds R x --allocations K: K sockets each Allocate (signed), then each deletes its
         allocation (Refresh with LIFETIME 0); repeat. R x K allocations made and freed. After
         the last round the server should hold what it held before the first.

RSS is read before, after a warm-up (one small round: the allocator's arenas and the runtime's
worker stacks settle), at the peak, and after --settle seconds. Prints a summary and one JSON line.

  python3 bench/turn_memory.py churn --pid PID --port 3478 --secret S --rounds 20 --allocations 500
  python3 bench/turn_memory.py flood --pid PID --port 3478 --requests 100000

Needs only Python 3. The server must allow --allocations allocations at once (WebCall:
TURN_TOTAL_QUOTA; each socket uses its own user name, so TURN_USER_QUOTA is not reached).
"""
import argparse, base64, hashlib, hmac, json, os, select, socket, struct, sys, time

COOKIE = 0x2112A442
ALLOCATE, REFRESH = 0x0003, 0x0004
ATTR_USERNAME, ATTR_MI, ATTR_ERROR, ATTR_LIFETIME = 0x0006, 0x0008, 0x0009, 0x000D
ATTR_REALM, ATTR_NONCE, ATTR_TRANSPORT = 0x0014, 0x0015, 0x0019


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def attr(typ, value):
    pad = (4 - len(value) % 4) % 4
    return struct.pack("!HH", typ, len(value)) + value + b"\0" * pad


def message(method, attrs, key=None):
    txid = os.urandom(12)
    body = b"".join(attrs)
    if key is not None:
        # MESSAGE-INTEGRITY covers the header with a length that includes itself.
        header = struct.pack("!HHI", method, len(body) + 24, COOKIE) + txid
        mac = hmac.new(key, header + body, hashlib.sha1).digest()
        body += attr(ATTR_MI, mac)
    return struct.pack("!HHI", method, len(body), COOKIE) + txid + body, txid


def parse(data):
    """(message type, transaction id, {attribute type: value})"""
    if len(data) < 20:
        return None
    typ, length, cookie = struct.unpack("!HHI", data[:8])
    if cookie != COOKIE:
        return None
    attrs, at = {}, 20
    while at + 4 <= min(len(data), 20 + length):
        t, n = struct.unpack("!HH", data[at:at + 4])
        attrs.setdefault(t, data[at + 4:at + 4 + n])
        at += 4 + n + (4 - n % 4) % 4
    return typ, data[8:20], attrs


def error_code(attrs):
    v = attrs.get(ATTR_ERROR)
    return v[2] * 100 + v[3] if v and len(v) >= 4 else None


def rest_credentials(secret, user, valid_for=3600):
    username = f"{int(time.time()) + valid_for}:{user}"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest())
    return username, password.decode()


class Client:
    """One UDP socket = one 5-tuple = at most one allocation."""

    def __init__(self, server, index, secret):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.server = server
        self.username, password = rest_credentials(secret, f"mem{index}")
        self.nonce = self.realm = None
        self.password = password

    def key(self):
        return hashlib.md5(f"{self.username}:{self.realm}:{self.password}".encode()).digest()

    def signed(self, method, attrs):
        return message(method, attrs + [attr(ATTR_USERNAME, self.username.encode()),
                                        attr(ATTR_REALM, self.realm.encode()),
                                        attr(ATTR_NONCE, self.nonce)], self.key())


def exchange(clients, build, timeout=2.0, tries=3):
    """Sends build(client) from every client and waits for the answers (resending what is
    unanswered); returns {client index: (type, attrs)}."""
    answers, pending = {}, {}
    for attempt in range(tries):
        for i, c in enumerate(clients):
            if i in answers:
                continue
            data, txid = build(c)
            pending[txid] = i
            try:
                c.sock.sendto(data, c.server)
            except BlockingIOError:
                pass
        deadline = time.monotonic() + timeout
        by_fd = {c.sock.fileno(): c for c in clients}
        while len(answers) < len(clients) and time.monotonic() < deadline:
            ready, _, _ = select.select(list(by_fd), [], [], 0.05)
            for fd in ready:
                try:
                    data = by_fd[fd].sock.recv(4096)
                except BlockingIOError:
                    continue
                m = parse(data)
                if m and m[1] in pending:
                    answers[pending.pop(m[1])] = (m[0], m[2])
        if len(answers) == len(clients):
            break
    return answers


def churn_round(clients):
    # 401 with REALM and NONCE first, then the signed Allocate, then Refresh(0).
    challenged = exchange(clients, lambda c: message(ALLOCATE, [attr(ATTR_TRANSPORT, bytes([17, 0, 0, 0]))]))
    for i, (_, attrs) in challenged.items():
        clients[i].nonce, clients[i].realm = attrs.get(ATTR_NONCE), (attrs.get(ATTR_REALM) or b"").decode()
    ready = [c for i, c in enumerate(clients) if i in challenged and clients[i].nonce]
    allocated = exchange(ready, lambda c: c.signed(ALLOCATE, [attr(ATTR_TRANSPORT, bytes([17, 0, 0, 0]))]))
    made = [ready[i] for i, (typ, _) in allocated.items() if typ == 0x0103]
    failed = {}
    for typ, attrs in allocated.values():
        if typ != 0x0103:
            failed[error_code(attrs)] = failed.get(error_code(attrs), 0) + 1
    deleted = exchange(made, lambda c: c.signed(REFRESH, [attr(ATTR_LIFETIME, struct.pack("!I", 0))]))
    freed = sum(1 for typ, _ in deleted.values() if typ == 0x0104)
    return len(made), freed, failed


def churn(a):
    server = (a.host, a.port)
    before = rss_kib(a.pid)
    warm = [Client(server, 10_000_000 + i, a.secret) for i in range(min(50, a.allocations))]
    churn_round(warm)
    for c in warm:
        c.sock.close()
    time.sleep(1)
    warmed = rss_kib(a.pid)
    made = freed = 0
    failed, peak = {}, warmed
    t0 = time.monotonic()
    for r in range(a.rounds):
        clients = [Client(server, r * a.allocations + i, a.secret) for i in range(a.allocations)]
        m, f, fails = churn_round(clients)
        made, freed = made + m, freed + f
        for k, v in fails.items():
            failed[k] = failed.get(k, 0) + v
        peak = max(peak, rss_kib(a.pid))
        for c in clients:
            c.sock.close()
        print(f"round {r + 1}/{a.rounds}: {m} allocated, {f} freed, rss {rss_kib(a.pid)} KiB", file=sys.stderr)
    wall = time.monotonic() - t0
    time.sleep(a.settle)
    after = rss_kib(a.pid)
    res = {"scenario": "churn", "rounds": a.rounds, "allocations_per_round": a.allocations,
           "allocated": made, "freed": freed, "refused": failed, "seconds": round(wall, 1),
           "rss_kib": {"before": before, "after_warmup": warmed, "peak": peak, "after": after},
           "growth_kib_after_warmup": after - warmed}
    print(f"churn: {made} allocations made, {freed} freed in {wall:.1f} s; RSS before {before} KiB, "
          f"after warm-up {warmed}, peak {peak}, after {after} ({after - warmed:+d} KiB since warm-up)")
    print(json.dumps(res))


def flood(a):
    server = (a.host, a.port)
    socks = []
    for _ in range(a.sockets):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    request = lambda: message(ALLOCATE, [attr(ATTR_TRANSPORT, bytes([17, 0, 0, 0]))])[0]
    before = rss_kib(a.pid)
    sent = answered = 0
    nonces, peak = set(), before
    t0 = time.monotonic()
    window = 64  # requests in flight per socket pass
    while sent < a.requests:
        for s in socks:
            for _ in range(min(window // len(socks) + 1, a.requests - sent)):
                try:
                    s.sendto(request(), server)
                    sent += 1
                except BlockingIOError:
                    break
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:
            ready, _, _ = select.select(socks, [], [], 0.01)
            if not ready:
                break
            for s in ready:
                while True:
                    try:
                        data = s.recv(4096)
                    except BlockingIOError:
                        break
                    answered += 1
                    m = parse(data)
                    if m and ATTR_NONCE in m[2]:
                        nonces.add(m[2][ATTR_NONCE])
        if sent % 10_000 < window:
            peak = max(peak, rss_kib(a.pid))
    wall = time.monotonic() - t0
    peak = max(peak, rss_kib(a.pid))
    time.sleep(a.settle)
    after = rss_kib(a.pid)
    res = {"scenario": "flood", "requests": sent, "answered": answered, "distinct_nonces": len(nonces),
           "seconds": round(wall, 1), "rss_kib": {"before": before, "peak": peak, "after": after},
           "growth_kib": after - before}
    print(f"flood: {sent} unauthenticated Allocates in {wall:.1f} s, {answered} answered with "
          f"{len(nonces)} distinct nonce(s); RSS before {before} KiB, peak {peak}, after {after} "
          f"({after - before:+d} KiB)")
    print(json.dumps(res))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("scenario", choices=["flood", "churn"])
    p.add_argument("--pid", type=int, required=True, help="the server's process id (its RSS is read)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3478)
    p.add_argument("--secret", default="", help="TURN REST API shared secret (churn)")
    p.add_argument("--requests", type=int, default=100_000, help="flood: Allocates to send")
    p.add_argument("--sockets", type=int, default=64, help="flood: source ports")
    p.add_argument("--rounds", type=int, default=20, help="churn: rounds")
    p.add_argument("--allocations", type=int, default=500, help="churn: allocations per round")
    p.add_argument("--settle", type=float, default=5.0, help="seconds before the last RSS reading")
    a = p.parse_args()
    if a.scenario == "churn" and not a.secret:
        p.error("churn needs --secret")
    (flood if a.scenario == "flood" else churn)(a)


if __name__ == "__main__":
    main()
