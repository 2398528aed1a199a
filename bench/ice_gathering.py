#!/usr/bin/env python3
"""How long a browser takes to gather ICE candidates with the ice servers WebCall hands out,
with and without the `turns:` URL (and the IPv6 ones): each URL is one more allocation the
browser makes while it gathers.

Starts WebCall (HTTPS and TURN over TLS on one port, a test CA made here and trusted through
the browser's NSS database) and a headless Chromium through chromedriver, then for each list
of URLs runs RTCPeerConnection gathering ROUNDS times (the lists alternate) and prints, per
list, the median and spread of: time to the first relay candidate, time to a relay candidate
of every kind offered, and time until gathering completes.

    usage: bench/ice_gathering.py PATH/TO/webcall [ROUNDS]
    needs: chromium, chromium-driver, openssl, certutil (libnss3-tools)

Only loopback is used: this measures the cost of the extra URLs on an open network (all of
them answer). On a network that blocks some of them, the blocked ones cost their timeouts
whether or not turns: is in the list; the call itself does not wait for gathering to end
(WebCall's client trickles candidates).
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SECRET = "bench-turn-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args, **kw):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)


def make_pki(d):
    run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-days", "2", "-subj", "/CN=bench CA", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=localhost", "-keyout", f"{d}/key.pem", "-out", f"{d}/req.pem")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", f"{d}/req.pem", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext.cnf", "-out", f"{d}/cert.pem")
    nssdb = f"{d}/home/.pki/nssdb"
    os.makedirs(nssdb)
    run("certutil", "-N", "-d", f"sql:{nssdb}", "--empty-password")
    run("certutil", "-A", "-d", f"sql:{nssdb}", "-t", "C,,", "-n", "bench-ca", "-i", f"{d}/ca.pem")


def webdriver(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["value"]


GATHER = r"""
const [servers, done] = arguments;
const t0 = performance.now();
const pc = new RTCPeerConnection({iceServers: servers, iceTransportPolicy: 'relay'});
pc.createDataChannel('x');
const firsts = {};
let first = null;
pc.onicecandidate = (e) => {
  const now = performance.now() - t0;
  if (!e.candidate) { pc.close(); done({first, firsts, complete: now}); return; }
  if (!e.candidate.candidate || e.candidate.type !== 'relay') return;
  const kind = (e.candidate.relayProtocol || '?') + '/' + (e.candidate.address.includes(':') ? 'v6' : 'v4');
  if (first === null) first = now;
  if (!(kind in firsts)) firsts[kind] = now;
};
pc.createOffer().then((o) => pc.setLocalDescription(o));
setTimeout(() => { pc.close(); done({first, firsts, complete: null}); }, 20000);
"""


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    d = tempfile.mkdtemp()
    procs = []
    try:
        make_pki(d)
        port, turn_port, driver_port = free_port(), free_port(), free_port()
        env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), DATABASE_URL=f"sqlite://{d}/w.db",
                   JWT_SECRET="bench-jwt-secret-0123456789abcdefgh", REGISTRATION_SECRET="bench",
                   TURN_SECRET=SECRET, TURN_LISTEN=f"127.0.0.1:{turn_port},[::1]:{turn_port}",
                   TURN_PUBLIC_IP="127.0.0.1", TURN_PUBLIC_IP6="::1", TURN_ALLOW_LOOPBACK_PEERS="true",
                   TLS_CERT_FILE=f"{d}/cert.pem", TLS_KEY_FILE=f"{d}/key.pem", HTTP_REDIRECT_PORT="off",
                   TURN_USER_QUOTA="1000", RUST_LOG="warn")
        procs.append(subprocess.Popen([binary], env=env, cwd=d, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(["chromedriver", f"--port={driver_port}"],
                                      env=dict(os.environ, HOME=f"{d}/home"),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        base = f"http://127.0.0.1:{driver_port}"
        for _ in range(100):
            try:
                webdriver(base, "GET", "/status")
                urllib.request.urlopen(f"https://localhost:{port}/healthz", context=_ca(d), timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--disable-quic", "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", f"--user-data-dir={d}/profile"]}}}}
        session = webdriver(base, "POST", "/session", caps)["sessionId"]
        s = f"/session/{session}"
        webdriver(base, "POST", f"{s}/url", {"url": f"https://localhost:{port}/static/check.html"})

        expiry = int(time.time()) + 3600
        username = f"{expiry}:bench"
        credential = base64.b64encode(hmac.new(SECRET.encode(), username.encode(), hashlib.sha1).digest()).decode()
        v4 = [f"turn:127.0.0.1:{turn_port}?transport=udp", f"turn:127.0.0.1:{turn_port}?transport=tcp"]
        v6 = [f"turn:[::1]:{turn_port}?transport=udp", f"turn:[::1]:{turn_port}?transport=tcp"]
        tls = [f"turns:localhost:{port}?transport=tcp"]
        lists = {"udp+tcp": v4, "udp+tcp+turns": v4 + tls, "udp+tcp+ipv6+turns": v4 + v6 + tls}
        samples = {name: [] for name in lists}
        for _ in range(rounds):
            for name, urls in lists.items():
                servers = [{"urls": urls, "username": username, "credential": credential}]
                out = webdriver(base, "POST", f"{s}/execute/async", {"script": GATHER, "args": [servers]})
                samples[name].append(out)
        webdriver(base, "DELETE", s)

        def stats(xs):
            xs = [x for x in xs if x is not None]
            if not xs:
                return "never"
            return f"median {statistics.median(xs):6.1f} ms (min {min(xs):.1f}, max {max(xs):.1f})"

        print(f"ICE gathering, {rounds} rounds per list (alternating), relay candidates only, loopback")
        for name, outs in samples.items():
            kinds = sorted({k for o in outs for k in o["firsts"]})
            every = [max(o["firsts"].values()) if len(o["firsts"]) == len(kinds) else None for o in outs]
            print(f"{name}:")
            print(f"  first relay candidate:      {stats([o['first'] for o in outs])}")
            print(f"  one of every kind {kinds}: {stats(every)}")
            print(f"  gathering complete:         {stats([o['complete'] for o in outs])}")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(d, ignore_errors=True)


def _ca(d):
    import ssl
    return ssl.create_default_context(cafile=f"{d}/ca.pem")


if __name__ == "__main__":
    main()
