#!/usr/bin/python3
"""bench/cluster_check.py: the value checker of bench/cluster_chaos.sh.

Through bulwark as a plain client (redis-py, no cluster support), writes keys
with known values and reads them back until STOPFILE exists, then reads every
key once more (the final sweep) and prints one JSON object.

  cluster_check.py PORT STOPFILE [THREADS] [KEYS_PER_THREAD]

Each thread owns its keys (RUN:t:i, spread over every slot), so it always
knows what a read must return: the value of its last acknowledged SET, or —
after a SET that failed (the write may or may not have happened) — that value
or the one before. A third of the threads send one request at a time; a third
send pipelines of 24 mixed requests (a SET followed by GETs of the same key
inside one pipeline must see it: order across redirections); a third send a
SET and, without waiting for its reply, a GET of the same key in a second
write (the GET must see the SET). Ops: SET, GET of an owned key, GET of a key
nobody writes (must be nil), MGET of 4 owned keys (split per slot by bulwark).

Counted:
  wrong      a value other than an acceptable one (not ours, or not the last)
  stale      of those, one we wrote earlier for that key (a write acknowledged
             by a master that died before its replica got it: Redis Cluster's
             asynchronous replication, not bulwark; still counted in wrong)
  nil_written  nil for a key whose write was acknowledged (a gate false negative)
  absent_not_nil  a value for a key nobody writes
  errors     error replies and exceptions, with their text and timestamps
"""
import json
import os
import random
import socket
import sys
import threading
import time

import redis

PORT = int(sys.argv[1])
STOPFILE = sys.argv[2]
THREADS = int(sys.argv[3]) if len(sys.argv) > 3 else 6
KEYS = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
PIPE = 24
RUN = "chk%x" % random.getrandbits(32)

lock = threading.Lock()
res = {
    "ops": 0, "sets": 0, "gets": 0, "absent_gets": 0, "mgets": 0,
    "wrong": 0, "stale": 0, "nil_written": 0, "absent_not_nil": 0,
    "errors": 0, "first_error": None, "last_error": None,
    "error_kinds": {}, "error_samples": [], "wrong_samples": [],
    "sweep_keys": 0, "sweep_wrong": 0, "sweep_stale": 0, "sweep_nil_written": 0,
    "sweep_errors": 0, "err_hist": {},
}


def note_error(text, when):
    with lock:
        res["errors"] += 1
        if res["first_error"] is None:
            res["first_error"] = when
        res["last_error"] = when
        b = int(when * 10)  # errors per 100 ms, for the window checks
        res["err_hist"][b] = res["err_hist"].get(b, 0) + 1
        words = text.replace("ResponseError: ERR ", "ResponseError: ").split()
        kind = " ".join(words[:3])[:60]
        res["error_kinds"][kind] = res["error_kinds"].get(kind, 0) + 1
        if len(res["error_samples"]) < 20:
            res["error_samples"].append([round(when, 3), text[:200]])


class Keys:
    """The state of one thread's keys: acceptable values per key."""

    def __init__(self, t):
        self.t = t
        self.names = ["%s:%d:%d" % (RUN, t, i) for i in range(KEYS)]
        self.ok = [{None} for _ in range(KEYS)]  # acceptable replies of a read
        self.seq = [0] * KEYS                    # last value number written
        self.written = [False] * KEYS            # a SET was acknowledged once

    def value(self, i):
        self.seq[i] += 1
        return "%s:%d" % (self.names[i], self.seq[i])

    def set_done(self, i, v, err):
        if err:
            self.ok[i] = self.ok[i] | {v}
        else:
            self.ok[i] = {v}
            self.written[i] = True

    def read(self, i, got, sweep=False):
        if got in self.ok[i]:
            self.ok[i] = {got}
            return
        pre = "sweep_" if sweep else ""
        with lock:
            if got is None:
                res[pre + "nil_written"] += 1
            else:
                res[pre + "wrong"] += 1
                if got.startswith(self.names[i] + ":"):
                    res[pre + "stale"] += 1
            if len(res["wrong_samples"]) < 20:
                res["wrong_samples"].append([round(time.time(), 3), self.names[i], got,
                                             sorted(x or "nil" for x in self.ok[i])])
        self.ok[i] = {got}


def reply_text(x):
    return x.decode() if isinstance(x, bytes) else x


def plan(keys, rng):
    """One op: (kind, args, key indexes, value)."""
    r = rng.random()
    if r < 0.4:
        i = rng.randrange(KEYS)
        return ("set", i, keys.value(i))
    if r < 0.8:
        return ("get", rng.randrange(KEYS), None)
    if r < 0.9:
        return ("absent", "%s:absent:%d:%d" % (RUN, keys.t, rng.randrange(KEYS)), None)
    return ("mget", [rng.randrange(KEYS) for _ in range(4)], None)


def check(keys, op, reply, when):
    kind, arg, val = op
    with lock:
        res["ops"] += 1
        res[{"set": "sets", "get": "gets", "absent": "absent_gets", "mget": "mgets"}[kind]] += 1
    if isinstance(reply, Exception):
        note_error("%s: %s" % (type(reply).__name__, reply), when)
        if kind == "set":
            keys.set_done(arg, val, True)
        return
    if kind == "set":
        keys.set_done(arg, val, False)
    elif kind == "get":
        keys.read(arg, reply_text(reply))
    elif kind == "absent":
        if reply is not None:
            with lock:
                res["absent_not_nil"] += 1
    else:
        # one MGET reads each key at one moment; the same key twice: same value
        for i, v in zip(arg, reply):
            keys.read(i, reply_text(v))


def worker(t, pipelined):
    rng = random.Random(t * 7919 + 1)
    keys = Keys(t)
    r = redis.Redis(port=PORT, socket_timeout=10, socket_connect_timeout=5)
    state["keys"][t] = keys
    while not os.path.exists(STOPFILE):
        n = PIPE if pipelined else 1
        ops = [plan(keys, rng) for _ in range(n)]
        if pipelined and rng.random() < 0.5:  # a write, then reads of it in the same pipeline
            i = rng.randrange(KEYS)
            ops[0] = ("set", i, keys.value(i))
            ops[rng.randrange(1, n)] = ("get", i, None)
        p = r.pipeline(transaction=False)
        for kind, arg, val in ops:
            if kind == "set":
                p.set(keys.names[arg], val)
            elif kind == "get":
                p.get(keys.names[arg])
            elif kind == "absent":
                p.get(arg)
            else:
                p.mget([keys.names[i] for i in arg])
        try:
            replies = p.execute(raise_on_error=False)
        except Exception as e:  # the connection: every op failed (writes maybe done)
            replies = [e] * len(ops)
            time.sleep(0.01)
        now = time.time()
        for op, rep in zip(ops, replies):
            check(keys, op, rep, now)


def resp_read(f):
    """One reply from the buffered socket f: bytes, None, str (status), or an Exception."""
    line = f.readline()
    if not line:
        raise ConnectionError("connection closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        return redis.ResponseError(rest.decode())
    if t == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode()
    raise ConnectionError("unexpected reply %r" % line[:40])


def resp_cmd(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def split_worker(t):
    """SET, then GET of the same key written separately without waiting for the
    SET's reply (a pipelining client whose requests reach bulwark in two
    reads): the GET must see the SET, across redirections and map changes."""
    rng = random.Random(t * 7919 + 1)
    keys = Keys(t)
    state["keys"][t] = keys
    s = f = None
    while not os.path.exists(STOPFILE):
        if s is None:
            try:
                s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                f = s.makefile("rb")
            except OSError as e:
                note_error("ConnectionError: %s" % e, time.time())
                s = None
                time.sleep(0.01)
                continue
        i = rng.randrange(KEYS)
        v = keys.value(i)
        ops = [("set", i, v), ("get", i, None)]
        try:
            s.sendall(resp_cmd("SET", keys.names[i], v))
            if rng.random() < 0.5:
                time.sleep(0.0002)
            s.sendall(resp_cmd("GET", keys.names[i]))
            replies = [resp_read(f), resp_read(f)]
        except (OSError, ConnectionError) as e:
            replies = [e, e]
            s.close()
            s = None
        now = time.time()
        for op, rep in zip(ops, replies):
            check(keys, op, rep, now)


def sweep(keys):
    """Every key once more, after the load: all served, all as last written."""
    r = redis.Redis(port=PORT, socket_timeout=10)
    for i in range(KEYS):
        try:
            got = r.get(keys.names[i])
        except Exception as e:
            with lock:
                res["sweep_errors"] += 1
                if len(res["error_samples"]) < 30:
                    res["error_samples"].append([round(time.time(), 3), "sweep: %s" % e])
            continue
        with lock:
            res["sweep_keys"] += 1
        keys.read(i, reply_text(got), sweep=True)


state = {"keys": {}}
start = time.time()
threads = [threading.Thread(target=worker, args=(t, t % 3 == 1)) if t % 3 != 2 else
           threading.Thread(target=split_worker, args=(t,)) for t in range(THREADS)]
for th in threads:
    th.start()
for th in threads:
    th.join()
end = time.time()
for t in sorted(state["keys"]):
    sweep(state["keys"][t])
res["err_hist"] = sorted([b / 10, n] for b, n in res["err_hist"].items())
res["start"] = round(start, 3)
res["end"] = round(end, 3)
res["ops_per_sec"] = round(res["ops"] / max(end - start, 1e-9))
for k in ("first_error", "last_error"):
    if res[k] is not None:
        res[k] = round(res[k], 3)
print(json.dumps(res))
