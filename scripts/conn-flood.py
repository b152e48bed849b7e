#!/usr/bin/env python3
"""Connection flood against `caplab serve`: RSS before, during and after N half-open connections.

Starts its own g1 and g2 (`redis-server` on free loopback ports, in a temporary directory) and
one `caplab serve --mode ap` over them, then opens N connections that each send half a request
line and nothing more (the slowloris pattern), holds them, closes them all, and reports the
app's resident memory (VmRSS) at each stage, whether `/health` answered on a new connection
during and after the flood, how many connections were refused at the cap, and how many the
app still had open at the end. Everything it starts is stopped by pid. Loopback only.

    scripts/conn-flood.py --caplab target/release/caplab --connections 20000 \
        [--env MAX_CONNECTIONS=100000 --env HTTP_HEADER_READ_TIMEOUT_SEC=3600]
"""

import argparse
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def get(port, path, timeout=5.0):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except Exception as e:  # noqa: BLE001 - a refused or reset connection is an answer here
        return 0, str(e)


def wait_port(port, limit=20.0):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def metric(text, series):
    for line in text.splitlines():
        if line.startswith(series):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--caplab", required=True)
    ap.add_argument("--connections", type=int, default=20000)
    ap.add_argument("--hold", type=float, default=5.0, help="seconds to hold the flood")
    ap.add_argument("--settle", type=float, default=15.0, help="seconds to wait after it")
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for caplab serve")
    ap.add_argument("--then", help="a shell command run after the settle, {pid} = the app's pid; "
                    "RSS is read again after it (e.g. a gdb call to malloc_trim)")
    args = ap.parse_args()

    # The flood and the app (which inherits the limit) each need a descriptor per connection.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, args.connections + 4096)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))  # root may raise the hard limit
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    tmp = tempfile.mkdtemp(prefix="caplab-flood-")
    procs = []
    try:
        g1, g2, app = free_port(), free_port(), free_port()
        common = ["--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                  "--protected-mode", "no", "--daemonize", "no"]
        procs.append(subprocess.Popen(["redis-server", "--port", str(g1), "--dir", tmp,
                                       "--logfile", f"{tmp}/g1.log"] + common))
        procs.append(subprocess.Popen(["redis-server", "--port", str(g2), "--dir", tmp,
                                       "--logfile", f"{tmp}/g2.log", "--replicaof",
                                       "127.0.0.1", str(g1)] + common))
        wait_port(g1)
        wait_port(g2)
        env = dict(os.environ, MODE="ap", PORT=str(app),
                   REDIS_G1_URL=f"redis://127.0.0.1:{g1}", REDIS_G2_URL=f"redis://127.0.0.1:{g2}",
                   AUDIT_LOG="off", LOG_LEVEL="warn")
        for kv in args.env:
            k, v = kv.split("=", 1)
            env[k] = v
        log = open(f"{tmp}/app.log", "w")
        server = subprocess.Popen([args.caplab, "serve"], env=env, stdout=log, stderr=log)
        procs.append(server)
        wait_port(app)
        for i in range(200):
            get(app, f"/write/warm{i % 20}/v")
        time.sleep(1.0)
        result = {"connections": args.connections, "env": args.env,
                  "rss_before_kib": rss_kib(server.pid), "fds_before": open_fds(server.pid)}

        socks, failed = [], 0
        started = time.time()
        for _ in range(args.connections):
            try:
                s = socket.create_connection(("127.0.0.1", app), timeout=2.0)
                s.setblocking(False)
                try:
                    s.send(b"GET /read/k HTTP/1.1\r\nHo")
                except OSError:
                    pass
                socks.append(s)
            except OSError:
                failed += 1
        result["connect_failures"] = failed
        result["flood_open_s"] = round(time.time() - started, 2)
        peak = rss_kib(server.pid)
        hold_until = time.time() + args.hold
        while time.time() < hold_until:
            peak = max(peak, rss_kib(server.pid))
            time.sleep(0.1)
        result["rss_peak_kib"] = peak
        result["fds_during"] = open_fds(server.pid)
        status, _ = get(app, "/health", timeout=5.0)
        result["health_during"] = status
        refused = 0
        for s in socks:
            try:
                data = s.recv(200)
                if data.startswith(b"HTTP/1.1 503"):
                    refused += 1
            except OSError:
                pass
        result["answered_503"] = refused
        for s in socks:
            s.close()
        socks.clear()
        time.sleep(args.settle)
        result["rss_after_kib"] = rss_kib(server.pid)
        result["fds_after"] = open_fds(server.pid)
        status, _ = get(app, "/health")
        result["health_after"] = status
        status, text = get(app, "/metrics")
        result["open_after"] = metric(text, 'http_connections_open{mode="ap",slot="regular"}')
        result["rejected"] = metric(text, 'http_connections_rejected_total{mode="ap",reason="limit"}')
        result["rejected_overload"] = metric(
            text, 'http_connections_rejected_total{mode="ap",reason="overload"}')
        result["header_timeouts"] = metric(
            text, 'http_connection_timeouts_total{mode="ap",phase="header"}')
        if args.then:
            subprocess.run(args.then.format(pid=server.pid), shell=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            result["rss_after_then_kib"] = rss_kib(server.pid)
        print(json.dumps(result, indent=2))
    finally:
        for p in reversed(procs):
            try:
                p.send_signal(signal.SIGKILL)
                p.wait(timeout=10)
            except Exception:  # noqa: BLE001
                pass


if __name__ == "__main__":
    sys.exit(main())
