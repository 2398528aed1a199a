#!/usr/bin/env python3
"""coturn and one or more WebCall builds under the same evenly paced load (turn-load), alternating
run by run for several rounds in one sitting; prints each run and then, per scenario, the medians
and spreads of server CPU per delivered message, the ratio to coturn and the loss.

  usage: turn_paced_rounds.py --load target/release/turn-load [--rounds 3] [--rates "20000 50000"]
             [--modes "udp echo tcp"] [--duration 10] [--pairs 25] [--json out.jsonl]
             NAME=PATH/TO/webcall[,ENV=VALUE...] ...
  e.g.   bench/turn_paced_rounds.py --load target/release/turn-load webcall=target/release/webcall

Ports: coturn 24578 (relays 55000-59999), WebCall builds 35578, 35579, ... (HTTP 29180, ...;
relays 60000-60999, 61000-61999, ...), apart from turn_paced_vs_coturn.sh's so both can run.
Modes as in turn_paced_vs_coturn.sh: udp (client pairs), echo (through an echo peer), tcp (client
pairs over TCP). The order of the servers rotates each round, so none always runs first.
Needs: turnserver (Debian package coturn).
"""
import argparse, json, os, random, shutil, signal, statistics, subprocess, sys, tempfile, time

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--load", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--rates", default="20000 50000")
    ap.add_argument("--modes", default="udp echo tcp")
    ap.add_argument("--duration", default="10")
    ap.add_argument("--pairs", default="25")
    ap.add_argument("--json", help="append every run as a JSON line here")
    ap.add_argument("--no-coturn", action="store_true")
    ap.add_argument("variants", nargs="+", help="NAME=PATH[,ENV=VALUE...]")
    args = ap.parse_args()
    work = tempfile.mkdtemp()
    secret = f"bench-secret-{random.randrange(10**9)}"
    procs = {}
    ports = {}
    try:
        if not args.no_coturn:
            procs["coturn"] = subprocess.Popen(
                ["turnserver", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
                 "--listening-port=24578", "--min-port=55000", "--max-port=59999",
                 "--use-auth-secret", f"--static-auth-secret={secret}", "--realm=webcall",
                 "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli", "--no-stdout-log",
                 f"--log-file={work}/coturn.log", f"--pidfile={work}/coturn.pid"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ports["coturn"] = 24578
        for i, spec in enumerate(args.variants):
            name, rest = spec.split("=", 1)
            path, *envs = rest.split(",")
            env = dict(os.environ)
            env.update(APP_ENV="dev", HOST="127.0.0.1", PORT=str(29180 + i),
                       DATABASE_URL=f"sqlite://{work}/webcall{i}.db",
                       JWT_SECRET="bench-jwt-secret-0123456789abcdef", REGISTRATION_SECRET="bench",
                       TURN_LISTEN=f"127.0.0.1:{35578 + i}", TURN_PUBLIC_IP="127.0.0.1",
                       TURN_SECRET=secret, TURN_REALM="webcall",
                       TURN_RELAY_PORT_MIN=str(60000 + 1000 * i),
                       TURN_RELAY_PORT_MAX=str(60999 + 1000 * i),
                       TURN_ALLOW_LOOPBACK_PEERS="true", TURN_USER_QUOTA="1000",
                       TURN_TOTAL_QUOTA="10000", RUST_LOG="warn")
            env.update(e.split("=", 1) for e in envs)
            log = open(f"{work}/{name}.log", "w")
            procs[name] = subprocess.Popen([path], env=env, stdout=log, stderr=log)
            ports[name] = 35578 + i
        time.sleep(3)
        for name, p in procs.items():
            if p.poll() is not None:
                log = f"{work}/{name}.log"
                sys.exit(f"{name} did not start: " + (open(log).read()[-2000:] if os.path.exists(log) else ""))
        names = list(procs)
        results = []
        out = open(args.json, "a") if args.json else None
        for rnd in range(args.rounds):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for rate in args.rates.split():
                for mode in args.modes.split():
                    flags = {"udp": [], "echo": ["--echo"], "tcp": ["--tcp"]}[mode]
                    for name in order:
                        cmd = [args.load, "--server", f"127.0.0.1:{ports[name]}", "--secret", secret,
                               "--pairs", args.pairs, "--rate", rate, "--duration", args.duration,
                               "--server-pid", str(procs[name].pid), *flags]
                        load = open("/proc/loadavg").read().split()[0]
                        r = subprocess.run(cmd, capture_output=True, text=True)
                        line = (r.stdout.strip().splitlines() or ["{}"])[-1]
                        try:
                            res = json.loads(line)
                        except ValueError:
                            res = {}
                        res.update(server=name, mode=mode, rate=int(rate), round=rnd, loadavg=float(load))
                        results.append(res)
                        if out:
                            out.write(json.dumps(res) + "\n"); out.flush()
                        print(f"round {rnd} {mode:4} {rate:>6} {name:12} "
                              f"cpu/msg {res.get('server_cpu_us_per_msg')} us  loss {res.get('loss_pct')} %  "
                              f"lat p50/p99 {res.get('latency_p50_us')}/{res.get('latency_p99_us')} us  "
                              f"load {load}", flush=True)
        summarize(results, names)
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

def summarize(results, names):
    print("\nscenario            server        cpu/msg median (min-max) us   ratio median (min-max)   loss max %")
    for rate in sorted({r["rate"] for r in results}):
        for mode in dict.fromkeys(r["mode"] for r in results):
            for name in names:
                runs = [r for r in results if r["rate"] == rate and r["mode"] == mode and r["server"] == name]
                cpu = [r["server_cpu_us_per_msg"] for r in runs if r.get("server_cpu_us_per_msg")]
                if not cpu:
                    continue
                ratios = []
                if name != "coturn":
                    for r in runs:
                        c = [x for x in results if x["server"] == "coturn" and x["rate"] == rate
                             and x["mode"] == mode and x["round"] == r["round"]]
                        if c and c[0].get("server_cpu_us_per_msg") and r.get("server_cpu_us_per_msg"):
                            ratios.append(r["server_cpu_us_per_msg"] / c[0]["server_cpu_us_per_msg"])
                loss = max((r.get("loss_pct", 100) for r in runs), default=100)
                ratio = (f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
                         if ratios else "-")
                print(f"{mode:4} {rate:>6}         {name:12}  {statistics.median(cpu):6.2f} "
                      f"({min(cpu):.2f}-{max(cpu):.2f})          {ratio:24} {loss:.3f}")

if __name__ == "__main__":
    main()
