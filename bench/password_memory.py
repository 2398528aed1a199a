#!/usr/bin/env python3
"""Memory of the `webcall` process under bursts of password hashing (argon2id, 19 MiB each).

Starts the given binary on a fresh SQLite file, then runs, one after another:

  register   --accounts N registrations one after another
  logins     N concurrent logins with the right password
  unknown    --burst B concurrent failed logins for accounts that do not exist (no account
             needed: each still costs one hash), each from its own X-Forwarded-For address so
             the per-address login limit does not stop them first

and reads VmRSS of /proc/PID/status when idle (after start), after each step, and VmHWM (the
peak) at the end. Prints the status codes seen, a summary and one JSON line.

  cargo build --release -p webcall
  python3 bench/password_memory.py target/release/webcall --accounts 20 --burst 200

Needs only Python 3.
"""
import argparse, json, os, subprocess, sys, tempfile, threading, time, urllib.request, urllib.error
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

SECRET = "bench-registration-secret"
PASSWORD = "correct horse battery staple"


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def post(base, path, body, forwarded=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    if forwarded:
        req.add_header("X-Forwarded-For", forwarded)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def burst(calls):
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        start = threading.Barrier(len(calls))

        def run(call):
            start.wait()
            return call()

        return Counter(pool.map(run, calls))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--accounts", type=int, default=20)
    ap.add_argument("--burst", type=int, default=200)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp()
    env = {
        "PATH": os.environ.get("PATH", ""), "HOST": "127.0.0.1", "PORT": "0",
        "DATABASE_URL": f"sqlite://{tmp}/webcall.db", "REGISTRATION_SECRET": SECRET,
        "TURN_LISTEN": "127.0.0.1:0", "TRUSTED_PROXIES": "127.0.0.1", "RUST_LOG": "info",
    }
    proc = subprocess.Popen([args.binary], env=env, cwd=tmp, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    addr = None
    for line in proc.stdout:
        if "listening addr=" in line:
            addr = line.split("listening addr=")[1].split()[0]
            break
    if not addr:
        sys.exit("the server never said where it listens")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    base = f"http://{addr}"
    pid = proc.pid
    time.sleep(1)
    rss = {"idle": status_kib(pid, "VmRSS")}
    codes = {}
    try:
        codes["register"] = Counter(
            post(base, "/api/v1/auth/register", {"email": f"u{i}@example.org", "username": f"user{i}",
                                                 "password": PASSWORD, "secret": SECRET})
            for i in range(args.accounts))
        rss["after_register"] = status_kib(pid, "VmRSS")
        codes["logins"] = burst([
            (lambda i=i: post(base, "/api/v1/auth/login", {"username": f"user{i}", "password": PASSWORD}))
            for i in range(args.accounts)])
        rss["after_logins"] = status_kib(pid, "VmRSS")
        codes["unknown"] = burst([
            (lambda i=i: post(base, "/api/v1/auth/login", {"username": f"nobody{i}", "password": PASSWORD},
                              forwarded=f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}"))
            for i in range(args.burst)])
        rss["after_unknown"] = status_kib(pid, "VmRSS")
        rss["peak"] = status_kib(pid, "VmHWM")
        threads = len(os.listdir(f"/proc/{pid}/task"))
    finally:
        proc.terminate()
        proc.wait()
    mb = lambda kib: f"{kib / 1024:.1f} MB"
    print(f"idle {mb(rss['idle'])}; after {args.accounts} registrations {mb(rss['after_register'])}; "
          f"after {args.accounts} concurrent logins {mb(rss['after_logins'])}; after {args.burst} concurrent "
          f"unknown-user logins {mb(rss['after_unknown'])}; peak (VmHWM) {mb(rss['peak'])}; threads {threads}")
    for step, seen in codes.items():
        print(f"  {step}: " + ", ".join(f"{code} x{n}" for code, n in sorted(seen.items())))
    print(json.dumps({"rss_kib": rss, "codes": {k: dict(v) for k, v in codes.items()}, "threads": threads}))


if __name__ == "__main__":
    main()
