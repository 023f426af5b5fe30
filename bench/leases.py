#!/usr/bin/env python3
"""bench/leases.py: refills per expiry of one hot key, with and without leases.

CLIENTS cache-aside clients (threads, one connection each) read one key
through bulwark in a loop: GET; on nil, a simulated database load of DB_MS
ms, then SET key v PX TTL_MS (the refill). The key is set once with
PX TTL_MS on Redis directly, so it expires about every TTL_MS ms (plus
bulwark's TTL jitter) and is refilled by the clients each time. Run once
through a bulwark with the default --hotkey-lease 200 and once through one
with --hotkey-lease 0, both on the same redis-server; the refills are grouped
by expiry (a gap of more than TTL_MS/2 between two refills starts a new one).
With leases, the first client to see nil refills and the others' GETs are
held until its SET; without, every client that reads during the refill's
DB_MS gets nil and refills too (tests/integration/test_hotkey.c measures
the same at one expiry).

Usage: bench/leases.py [--expiries 5] [--clients 200] [--db-ms 20]
                       [--ttl-ms 1000] [--out bench/results/leases.tsv]
Environment: BULWARK_BIN (./bulwark). Starts its own redis-server and
bulwarks on free loopback ports, stops them (by pid) at the end.
Standard library only (raw RESP over sockets).
"""
import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    for _ in range(100):
        p = random.randint(20000, 32767)  # below the ephemeral ports
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", p)) != 0:
                return p
    raise RuntimeError("no free port")


def cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")

    def call(self, *args):
        """One command; returns the reply (None for a nil bulk)."""
        self.s.sendall(cmd(*args))
        return self.reply()

    def reply(self):
        line = self.f.readline()
        if not line:
            raise ConnectionError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t in (b"+", b":"):
            return rest
        if t == b"-":
            raise RuntimeError(rest.decode())
        raise RuntimeError("unexpected reply %r" % line)

    def close(self):
        self.f.close()
        self.s.close()


def wait_port(port, proc, log):
    for _ in range(200):
        if proc.poll() is not None:
            break
        try:
            c = Conn(port)
            c.call("PING")
            c.close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("leases.py: port %d did not answer; see %s" % (port, log))


def info_field(port, section, field):
    c = Conn(port)
    text = c.call("INFO", section).decode()
    c.close()
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1]
    return None


def stampede(port, key, a):
    """Run the clients across about a.expiries expiries; return the refill
    times (s, from the first SET) and the number of GETs."""
    d = Conn(a.rport)
    d.call("SET", key, "v", "PX", a.ttl_ms)
    d.close()
    t0 = time.monotonic()
    # the deadline falls mid-life of the key after a.expiries expiries
    life = a.ttl_ms * 1.05 + a.db_ms  # bulwark adds 0-10% TTL jitter
    until = t0 + (a.expiries * life + a.ttl_ms / 2) / 1000.0
    refills, gets = [], [0]
    lock = threading.Lock()
    start = threading.Barrier(a.clients)
    errors = []

    def client():
        try:
            c = Conn(port)
            mine, n = [], 0
            start.wait()
            while time.monotonic() < until:
                v = c.call("GET", key)
                n += 1
                if v is None:  # the "database" takes db_ms, then refill
                    time.sleep(a.db_ms / 1000.0)
                    c.call("SET", key, "v", "PX", a.ttl_ms)
                    mine.append(time.monotonic() - t0)
            c.close()
            with lock:
                refills.extend(mine)
                gets[0] += n
        except Exception as e:  # reported after the join
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        sys.exit("leases.py: %d clients failed, e.g. %s" % (len(errors), errors[0]))
    return sorted(refills), gets[0], until - t0


def by_expiry(times, gap_s, last_start):
    """Refill times grouped into expiries; groups starting after last_start
    (cut by the end of the run) are left out."""
    groups = []
    for t in times:
        if groups and t - groups[-1][-1] <= gap_s:
            groups[-1].append(t)
        else:
            groups.append([t])
    return [g for g in groups if g[0] <= last_start]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--expiries", type=int, default=5)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--db-ms", type=float, default=20)
    ap.add_argument("--ttl-ms", type=int, default=1000)
    ap.add_argument("--out", default="bench/results/leases.tsv")
    a = ap.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.chdir(root)
    bin_ = os.environ.get("BULWARK_BIN", "./bulwark")
    if not os.access(bin_, os.X_OK) or not shutil.which("redis-server"):
        sys.exit("leases.py: %s and redis-server are needed (make all deps)" % bin_)

    tmp = tempfile.mkdtemp(prefix="bulwark-leases.")
    procs = []
    try:
        a.rport = free_port()
        log = os.path.join(tmp, "redis.log")
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(a.rport), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", tmp, "--logfile", log]))
        wait_port(a.rport, procs[-1], log)
        load0 = open("/proc/loadavg").read().split()[:3]
        rows = []
        for lease in (200, 0):
            port = free_port()
            log = os.path.join(tmp, "bulwark-%d.log" % lease)
            p = subprocess.Popen(
                [bin_, "--port", str(port), "--upstream", "127.0.0.1:%d" % a.rport,
                 "--hotkey-lease", str(lease), "--loglevel", "warning", "--logfile", log])
            procs.append(p)
            wait_port(port, p, log)
            t = time.monotonic()
            while info_field(port, "hotkeys", "hotkey_enabled") != "1":
                if time.monotonic() - t > 10:
                    sys.exit("leases.py: hot keys not enabled on bulwark :%d" % port)
                time.sleep(0.02)
            key = "leases:%d" % lease
            times, gets, secs = stampede(port, key, a)
            groups = by_expiry(times, a.ttl_ms / 2000.0, secs - 0.3)
            held = info_field(port, "hotkeys", "hotkey_lease_holds")
            print("hotkey-lease %3d ms: refills per expiry %s; %d GETs in %.1f s, "
                  "lease holds %s" % (lease, [len(g) for g in groups], gets, secs, held),
                  file=sys.stderr)
            for i, g in enumerate(groups, 1):
                rows.append((lease, i, len(g), g[0]))
            p.terminate()
            p.wait()
            procs.remove(p)
        load1 = open("/proc/loadavg").read().split()[:3]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out, "w") as f:
        f.write("# bench/leases.py: %d cache-aside clients, database load %g ms, "
                "PX %d ms; %s UTC; load average %s at the start, %s at the end\n"
                % (a.clients, a.db_ms, a.ttl_ms, time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                   " ".join(load0), " ".join(load1)))
        f.write("lease_ms\texpiry\trefills\tfirst_refill_s\n")
        for r in rows:
            f.write("%d\t%d\t%d\t%.3f\n" % r)
    print("| hotkey-lease | refills per expiry | mean |")
    print("| ---: | --- | ---: |")
    for lease in (200, 0):
        n = [r[2] for r in rows if r[0] == lease]
        print("| %d ms | %s | %.1f |" % (lease, ", ".join(map(str, n)),
                                         sum(n) / len(n) if n else 0))


if __name__ == "__main__":
    main()
