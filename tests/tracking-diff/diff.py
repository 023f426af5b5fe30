#!/usr/bin/env python3
"""Differential test of proxy/tracking against a real redis-server.

Runs a random sequence of client-side-caching operations (CLIENT TRACKING
with random options, CACHING, TRACKINGINFO, GETREDIR, HELLO 2/3, reads,
writes by tracking and non-tracking clients, FLUSHALL, redirect targets that
disappear) against redis-server over raw sockets, records every push /
__redis__:invalidate message each connection receives and every CLIENT
reply, writes the same sequence as a script for tests/tracking-diff/replay.c
(proxy/tracking driven through its API) and compares the two byte for byte,
per client, plus the INFO tracking counters at the end.

The messages one operation sends to one client are compared as a multiset
(their order is reported, not failed): Redis sends the nulls of a FLUSHALL
in server.clients order, which clientsCron() keeps rotating, and a BCAST
prefix's clients in the order of their client struct's address; the module
uses id order for both. The orders that are deterministic in Redis (a key's
clients by little-endian id, the writer's own messages after the others')
are in tests/unit/test_tracking.c with bytes observed from Redis.

  cc -std=c11 -D_GNU_SOURCE -I. tests/tracking-diff/replay.c proxy/tracking.c \\
     proxy/util.c -o build/replay
  redis-server --port 23917 --save '' &
  python3 tests/tracking-diff/diff.py --port 23917 --replay build/replay --ops 2000 --seed 1

Not part of make test (it needs a redis-server it may FLUSHALL).
"""
import argparse
import random
import re
import select
import socket
import subprocess
import sys


def enc(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def resp_end(buf, pos):
    """End offset of the RESP3 value starting at pos, or None if incomplete."""
    nl = buf.find(b"\r\n", pos)
    if nl < 0:
        return None
    t, line = buf[pos:pos + 1], buf[pos + 1:nl]
    p = nl + 2
    if t in b"+-:_,#(":
        return p
    if t in b"$!=":
        n = int(line)
        if n < 0:
            return p
        return p + n + 2 if len(buf) >= p + n + 2 else None
    if t in b"*~>%|":
        n = int(line)
        if n < 0:
            return p
        if t in b"%|":
            n *= 2
        for _ in range(n):
            p = resp_end(buf, p)
            if p is None:
                return None
        if t == b"|":  # an attribute precedes the real value
            return resp_end(buf, p)
        return p
    raise ValueError("bad RESP type %r" % t)


OP = [0]  # the operation being run, for Conn's log


class Conn:
    def __init__(self, port, log):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.log = log  # messages (pushes) received, per id, shared dict
        self.resp = 2
        self.pubsub = False
        self.id = int(self.call("client", "id")[1:-2])

    def _msgs(self, timeout):
        out = []
        while True:
            end = resp_end(self.buf, 0) if self.buf else None
            if end is not None:
                out.append(self.buf[:end])
                self.buf = self.buf[end:]
                continue
            r, _, _ = select.select([self.s], [], [], timeout)
            if not r:
                return out
            d = self.s.recv(1 << 16)
            if not d:
                return out
            self.buf += d

    def is_push(self, m):
        if m.startswith(b">"):
            return True
        return self.pubsub and m.startswith(b"*3\r\n$7\r\nmessage\r\n")

    def call(self, *args):
        """Send a command; return its reply, logging the pushes around it."""
        self.s.sendall(enc(*args))
        while True:
            end = resp_end(self.buf, 0) if self.buf else None
            if end is None:
                self.buf += self.s.recv(1 << 16)
                continue
            m, self.buf = self.buf[:end], self.buf[end:]
            if hasattr(self, "id") and self.is_push(m):
                self.log.setdefault(self.id, []).append((OP[0], m))
                continue
            return m

    def drain(self, timeout=0.002):
        for m in self._msgs(timeout):
            assert self.is_push(m), (self.id, m)
            self.log.setdefault(self.id, []).append((OP[0], m))


KEYS = ["a1", "a2", "ab1", "b1", "k1", "k2", "x"]
PREFIXES = ["", "a", "ab", "b", "k", "x"]


def hexa(s):
    s = s if isinstance(s, bytes) else s.encode()
    return s.hex() if s else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--replay", required=True)
    ap.add_argument("--ops", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--actors", type=int, default=4)
    ap.add_argument("--dump", type=int, default=0, help="print both sides' messages to this client")
    o = ap.parse_args()
    rnd = random.Random(o.seed)
    got = {}      # id -> [push bytes] from Redis
    replies = {}  # id -> [CLIENT reply bytes] from Redis
    script = []
    w = Conn(o.port, got)
    w.call("flushall")
    w.call("config", "set", "tracking-table-max-keys", "0")
    script.append("new %d 2 0" % w.id)

    def new_client(resp, sub):
        c = Conn(o.port, got)
        if resp == 3:
            c.call("hello", "3")
            c.resp = 3
        if sub:
            c.call("subscribe", "__redis__:invalidate")
            c.pubsub = True
        script.append("new %d %d %d" % (c.id, c.resp, int(c.pubsub)))
        return c

    actors = [new_client(rnd.choice([2, 3]), False) for _ in range(o.actors)]
    r2 = new_client(2, True)
    r3 = new_client(3, False)
    dead = []
    everyone = lambda: [w, r2, r3] + actors

    def tracking_args():
        args = ["tracking", "on" if rnd.random() < 0.85 else rnd.choice(["off", "maybe"])]
        opts = []
        if rnd.random() < 0.7:
            ids = [r2.id] * 4 + [r3.id] * 2 + [a.id for a in actors] + dead[-2:] + [99999]
            opts.append(["redirect", str(rnd.choice(ids))])
        if rnd.random() < 0.4:
            opts.append(["bcast"])
        for _ in range(rnd.choice([0, 0, 1, 2])):
            opts.append(["prefix", rnd.choice(PREFIXES)])
        for f in ["optin", "optout", "noloop"]:
            if rnd.random() < 0.2:
                opts.append([f])
        rnd.shuffle(opts)
        for x in opts:
            args += x
        return args

    for step in range(o.ops):
        OP[0] = step
        a = rnd.choice(actors)
        r = rnd.random()
        if r < 0.15 or (r < 0.17 and True):
            args = tracking_args() if r < 0.15 else ["tracking", "off"]
            rep = a.call("client", *args)
            replies.setdefault(a.id, []).append(rep)
            script.append("cmd %d %s" % (a.id, " ".join(hexa(x) for x in args)))
        elif r < 0.22:
            args = ["caching", rnd.choice(["yes", "no"])]
            rep = a.call("client", *args)
            replies.setdefault(a.id, []).append(rep)
            script.append("cmd %d %s" % (a.id, " ".join(hexa(x) for x in args)))
        elif r < 0.30:
            args = [rnd.choice(["trackinginfo", "trackinginfo", "getredir"])]
            rep = a.call("client", *args)
            replies.setdefault(a.id, []).append(rep)
            script.append("cmd %d %s" % (a.id, hexa(args[0])))
        elif r < 0.57:
            ks = rnd.sample(KEYS, rnd.choice([1, 1, 2, 3]))
            a.call("mget", *ks) if len(ks) > 1 else a.call("get", ks[0])
            script.append("read %d %s" % (a.id, " ".join(hexa(k) for k in ks)))
        elif r < 0.88:
            who = a if r < 0.72 else w
            ks = rnd.sample(KEYS, rnd.choice([1, 1, 2, 3]))
            if len(ks) == 1:
                who.call("set", ks[0], str(step))
            else:
                who.call("mset", *[x for k in ks for x in (k, str(step))])
            script.append("write %d %s" % (who.id, " ".join(hexa(k) for k in ks)))
        elif r < 0.90:
            who = rnd.choice([a, w])
            who.call("flushall")
            script.append("flush %d" % who.id)
        elif r < 0.95:
            a.resp = 3 if a.resp == 2 else 2
            a.call("hello", str(a.resp))
            script.append("new %d %d 0" % (a.id, a.resp))
            script.append("read %d" % a.id)  # HELLO is a command: CACHING resets
        else:
            victim = rnd.choice(["r3", "actor"])
            if victim == "r3":
                old = r3
                r3 = new_client(3, False)
            else:
                i = actors.index(a)
                old = a
                actors[i] = new_client(rnd.choice([2, 3]), False)
            old.drain()
            old.s.close()
            w.call("client", "kill", "id", str(old.id))  # returns once it is gone
            dead.append(old.id)
            script.append("gone %d" % old.id)
        script.append("turn")
        for c in everyone():
            c.drain()

    info = w.call("info", "everything").decode()
    counts = {k: int(v) for k, v in re.findall(r"(tracking_\w+):(\d+)", info)}
    out = subprocess.run([o.replay], input="\n".join(script) + "\n", capture_output=True,
                         text=True, check=True).stdout
    want_send, want_reply, want_counts, turn = {}, {}, None, 0
    for line in out.splitlines():
        f = line.split()
        if f[0] == "turn":
            turn += 1
        elif f[0] == "send":
            want_send.setdefault(int(f[1]), []).append((turn, bytes.fromhex(f[2])))
        elif f[0] == "reply":
            want_reply.setdefault(int(f[1]), []).append(bytes.fromhex(f[2]))
        elif f[0] == "counts":
            want_counts = [int(x) for x in f[1:]]
    def canon(msgs):
        """Messages in order of operation, each operation's sorted."""
        return [m for _, m in sorted(msgs)]

    order_only = sum(1 for cid in got if got[cid] != want_send.get(cid)
                     and canon(got[cid]) == canon(want_send.get(cid, [])))

    if o.dump:
        for side, msgs in (("redis", got.get(o.dump, [])), ("module", want_send.get(o.dump, []))):
            for op, m in msgs:
                print("%s op %d %r" % (side, op, m))
    raw_got, raw_want = got, want_send
    got = {k: canon(v) for k, v in got.items()}
    want_send = {k: canon(v) for k, v in want_send.items()}
    bad = 0
    for name, redis_side, module_side in (("messages", got, want_send),
                                          ("CLIENT replies", replies, want_reply)):
        for cid in sorted(set(redis_side) | set(module_side)):
            x, y = redis_side.get(cid, []), module_side.get(cid, [])
            if x != y:
                bad += 1
                i = next((i for i in range(min(len(x), len(y))) if x[i] != y[i]), min(len(x), len(y)))
                print("DIFF %s to client %d: redis %d, module %d; first difference at #%d:"
                      % (name, cid, len(x), len(y), i))
                print("  redis  %r" % (x[i] if i < len(x) else None))
                print("  module %r" % (y[i] if i < len(y) else None))
                if name == "messages":
                    for side, msgs in (("redis", raw_got.get(cid, [])),
                                       ("module", raw_want.get(cid, []))):
                        for op, m in msgs[max(0, i - 4):i + 3]:
                            print("    %s op %d %r" % (side, op, m))
    rc = [counts["tracking_clients"], counts["tracking_total_keys"],
          counts["tracking_total_items"], counts["tracking_total_prefixes"]]
    if rc != want_counts:
        bad += 1
        print("DIFF counts: redis %s, module %s" % (rc, want_counts))
    total = sum(len(v) for v in got.values())
    print("seed %d: %d ops, %d messages, %d CLIENT replies, %s (%d clients got one "
          "operation's messages in another order)"
          % (o.seed, o.ops, total, sum(len(v) for v in replies.values()),
             "identical" if bad == 0 else "%d differences" % bad, order_only))
    if bad:
        with open("/tmp/tracking-diff-%d.script" % o.seed, "w") as f:
            f.write("\n".join(script) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
