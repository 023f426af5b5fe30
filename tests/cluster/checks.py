#!/usr/bin/python3
"""bulwark in front of a real Redis Cluster (3 masters + 3 replicas), as a
client that knows nothing about clusters sees it, and as cluster-aware
clients (redis-cli -c, redis-py RedisCluster) see it.

usage: checks.py BULWARK_PORT CLUSTER_PORT...
Every check compares with what the cluster itself holds or answers."""
import socket
import sys
import time

import redis
from redis.cluster import RedisCluster

BW = int(sys.argv[1])
NODES = [int(p) for p in sys.argv[2:]]
failures = []


def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)))
    if not cond:
        failures.append(name)


def raw(port, *cmds, proto=2):
    """Send commands (lists of args) in one pipeline; return the raw reply bytes."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(5)
    out = b""
    if proto == 3:
        cmds = (["HELLO", "3"],) + cmds
    for c in cmds:
        out += b"*%d\r\n" % len(c)
        for a in c:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
    s.sendall(out)
    data = b""
    # read until every reply is in: count replies with a tiny RESP scanner
    want = len(cmds)
    while True:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
        if count_replies(data) >= want:
            break
    s.close()
    if proto == 3:
        data = data[skip_one(data, 0):]
    return data


def skip_one(b, i):
    t = b[i:i + 1]
    j = b.index(b"\r\n", i)
    line = b[i + 1:j]
    i = j + 2
    if t in (b"+", b"-", b":", b"_", b",", b"#", b"("):
        return i
    if t in (b"$", b"=", b"!"):
        n = int(line)
        return i if n < 0 else i + n + 2
    if t in (b"*", b"~", b">", b"%", b"|"):
        n = int(line)
        if n < 0:
            return i
        if t in (b"%", b"|"):
            n *= 2
        for _ in range(n):
            i = skip_one(b, i)
        return i
    raise ValueError("bad reply")


def count_replies(b):
    i, n = 0, 0
    try:
        while i < len(b):
            i = skip_one(b, i)
            n += 1
    except (ValueError, IndexError):
        pass
    return n


direct = RedisCluster(host="127.0.0.1", port=NODES[0])
masters = [n for n in direct.get_nodes() if n.server_type == "primary"]
bw = redis.Redis(port=BW)
check("three masters in the cluster", len(masters) == 3, len(masters))

# ---- plain client: routing by slot -------------------------------------------
for i in range(1000):
    bw.set(f"key:{i}", f"v{i}")
vals = [direct.get(f"key:{i}") for i in range(1000)]
check("1000 SETs through bulwark land on their masters",
      vals == [f"v{i}".encode() for i in range(1000)])
check("GETs through bulwark", [bw.get(f"key:{i}") for i in range(0, 1000, 97)] ==
      [f"v{i}".encode() for i in range(0, 1000, 97)])
keys = [f"key:{i}" for i in range(20)] + ["missing:1", "missing:2"]
check("MGET across slots, in key order", bw.mget(keys) == [direct.get(k) for k in keys])
r3 = raw(BW, ["MGET", "key:1", "missing:1", "key:2"], proto=3)
check("MGET across slots in RESP3: RESP3 nulls", r3 == b"*3\r\n$2\r\nv1\r\n_\r\n$2\r\nv2\r\n", r3)
check("EXISTS across slots, summed", bw.exists("key:1", "key:2", "key:3", "missing:1", "key:1") == 4)
check("TOUCH across slots", bw.touch("key:1", "key:2", "missing:1") == 2)
bw.mset({f"ms:{i}": i for i in range(30)})
check("MSET across slots", [direct.get(f"ms:{i}") for i in range(30)] ==
      [str(i).encode() for i in range(30)])
check("DEL across slots, summed", bw.delete(*[f"ms:{i}" for i in range(30)], "missing:1") == 30)
check("UNLINK across slots", bw.unlink("key:998", "key:999", "missing:1") == 2)

# ---- the Bloom gate, one keyspace watch per master --------------------------------
for _ in range(100):
    if bw.info("upstream").get("cluster_gates_closed") == 3:
        break
    time.sleep(0.1)
check("every master's watch has its filter (3 gates closed)",
      bw.info("upstream").get("cluster_gates_closed") == 3, bw.info("upstream"))
calls = lambda: sum(redis.Redis(port=m.port).info("commandstats").get("cmdstat_get", {}).get("calls", 0)
                    for m in masters)
before, gated = calls(), bw.info("bloom")["bloom_gated_reads"]
for i in range(200):
    assert bw.get(f"never:{i}") is None
check("GETs of absent keys answered by the gate, not the cluster",
      calls() - before < 20 and bw.info("bloom")["bloom_gated_reads"] - gated >= 180,
      (calls() - before, bw.info("bloom")["bloom_gated_reads"] - gated))
wrong = 0
for i in range(300): # written straight on their master, read at once through bulwark
    k = f"direct:{i}"
    redis.Redis(port=direct.get_node_from_key(k).port).set(k, i)
    wrong += bw.get(k) != str(i).encode()
check("keys written directly on any master read back at once (no gate false negative)",
      wrong == 0, wrong)

import subprocess
bw.set("hot:key", "v")
before = calls()
subprocess.run(["redis-benchmark", "-p", str(BW), "-c", "50", "-P", "16", "-n", "40000", "-q",
                "GET", "hot:key"], check=True, capture_output=True)
saved = calls() - before
check("concurrent GETs of one key coalesced per master (40,000 client GETs)",
      saved < 20000, saved)

# ---- the hot-key cache, kept coherent by the watch of each key's master ------------
def get_calls(port):
    return redis.Redis(port=port).info("commandstats").get("cmdstat_get", {}).get("calls", 0)


def make_hot(key, n=300):
    for _ in range(n):
        bw.get(key)


def seen_within(key, want, limit=1.0):
    """Seconds until a GET through bulwark reads want (None: not within limit)."""
    t0 = time.time()
    while time.time() - t0 < limit:
        if bw.get(key) == want:
            return time.time() - t0
    return None


def node_key(port, prefix):
    return next(k for k in (f"{prefix}:{i}" for i in range(10000))
                if direct.get_node_from_key(k).port == port)


for m in masters:
    hk = node_key(m.port, "hotc")
    bw.set(hk, "v0")
    make_hot(hk)
    h0, c0 = bw.info("hotkeys")["hotkey_hits"], get_calls(m.port)
    vals = [bw.get(hk) for _ in range(500)]
    h1, c1 = bw.info("hotkeys")["hotkey_hits"], get_calls(m.port)
    check(f"hot key on master {m.port}: 500 GETs from bulwark's cache "
          f"(hits +{h1 - h0}, GETs on its master +{c1 - c0})",
          vals == [b"v0"] * 500 and h1 - h0 >= 490 and c1 - c0 <= 5, (h1 - h0, c1 - c0))
    redis.Redis(port=m.port).set(hk, "v1")  # behind bulwark's back, on the key's master
    took = seen_within(hk, b"v1")
    check(f"  … a write on master {m.port} itself is read through bulwark at once "
          f"({'-' if took is None else '%.4f s' % took})", took is not None and took < 1.0)
    make_hot(hk)
    redis.Redis(port=m.port).delete(hk)
    check(f"  … and its delete", seen_within(hk, None) is not None)

# ---- CLIENT TRACKING, invalidations from every master's watch ---------------------
class Conn:
    """A raw connection that reads replies and pushes one at a time."""

    def __init__(self, port, proto=2):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.settimeout(2)
        self.buf = b""
        if proto == 3:
            self.call("HELLO", "3")

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.s.sendall(out)

    def read(self, timeout=2.0):
        self.s.settimeout(timeout)
        while True:
            try:
                n = skip_one(self.buf, 0)
                one, self.buf = self.buf[:n], self.buf[n:]
                return one
            except (ValueError, IndexError):
                pass
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def call(self, *args):
        self.send(*args)
        return self.read()


def push_of(keys, proto=3):
    body = b"*%d\r\n" % len(keys) + b"".join(b"$%d\r\n%s\r\n" % (len(k), k.encode())
                                             for k in keys)
    if proto == 3:
        return b">2\r\n$10\r\ninvalidate\r\n" + body
    return b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n" + body


c3 = Conn(BW, 3)
check("CLIENT TRACKING ON in front of a cluster (RESP3)", c3.call("CLIENT", "TRACKING", "ON") ==
      b"+OK\r\n")
redir = Conn(BW)
rid = int(redir.call("CLIENT", "ID")[1:-2])
redir.call("SUBSCRIBE", "__redis__:invalidate")
c2 = Conn(BW)
check("CLIENT TRACKING ON REDIRECT (RESP2)",
      c2.call("CLIENT", "TRACKING", "ON", "REDIRECT", rid) == b"+OK\r\n")
for m in masters:
    tk = node_key(m.port, "trk")
    bw.set(tk, "a")
    c3.call("GET", tk)
    c2.call("GET", tk)
    redis.Redis(port=m.port).set(tk, "b")  # on its master, behind bulwark's back
    got3, got2 = c3.read(), redir.read()
    check(f"RESP3 push for a key written on master {m.port} itself", got3 == push_of([tk]), got3)
    check(f"RESP2 REDIRECT message for it", got2 == push_of([tk], 2), got2)
# another client writes through bulwark
tk = node_key(masters[1].port, "trk2")
c3.call("GET", tk)
check("another client's write through bulwark: invalidation",
      bw.set(tk, "x") and c3.read() == push_of([tk]))
check("  … and the tracking client's own reads are still answered",
      c3.call("GET", tk) == b"$1\r\nx\r\n")
cb = Conn(BW, 3)
check("BCAST PREFIX", cb.call("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "bc:") == b"+OK\r\n")
got = []
for m in masters:
    pk, other = node_key(m.port, "bc:"), node_key(m.port, "nb:")
    redis.Redis(port=m.port).set(other, 1)
    redis.Redis(port=m.port).set(pk, 1)
    got.append(cb.read() == push_of([pk]))
check("BCAST PREFIX: a push per key with the prefix written on each master, none other",
      got == [True] * len(masters) and cb.read(0.2) is None, got)
for c in (c3, c2, cb, redir):
    c.s.close()

# ---- Redis Cluster's own errors -----------------------------------------------
a, b = "key:1", "key:2"
assert direct.keyslot(a) != direct.keyslot(b)
mine = raw(BW, ["SUNION", a, b])
node = direct.get_node_from_key(a)
theirs = raw(node.port, ["SUNION", a, b])
check("CROSSSLOT: Redis Cluster's bytes", mine == theirs and mine.startswith(b"-CROSSSLOT"),
      (mine, theirs))
check("SELECT 1: Redis Cluster's bytes", raw(BW, ["SELECT", "1"]) == raw(node.port, ["SELECT", "1"]))
hello = raw(BW, ["HELLO", "3"])
check("HELLO 3: mode cluster, as a Redis Cluster node says", b"$4\r\nmode\r\n$7\r\ncluster\r\n" in hello
      and b"$4\r\nmode\r\n$7\r\ncluster\r\n" in raw(node.port, ["HELLO", "3"]), hello)

# ---- keyless commands over every master -----------------------------------------
total = sum(redis.Redis(port=m.port).dbsize() for m in masters)
check("DBSIZE is the masters' sum", bw.dbsize() == total, (bw.dbsize(), total))
check("KEYS * finds every key", len(bw.keys("*")) == total)
seen, cursor = set(), 0
while True:
    cursor, batch = bw.scan(cursor, count=100)
    seen.update(batch)
    if cursor == 0:
        break
allkeys = set()
for m in masters:
    allkeys.update(redis.Redis(port=m.port).keys("*"))
check("SCAN through bulwark visits every key of every master", seen == allkeys,
      (len(seen), len(allkeys)))
check("RANDOMKEY", bw.randomkey() in allkeys)

# ---- bulwark as a one-node cluster for cluster-aware clients ---------------------
info = bw.execute_command("CLUSTER", "INFO")
check("CLUSTER INFO: ok", b"cluster_state:ok" in (info if isinstance(info, bytes) else str(info).encode()))
slots = bw.execute_command("CLUSTER", "SLOTS")
check("CLUSTER SLOTS: one node, every slot, bulwark itself",
      len(slots) == 1 and slots[0][0] == 0 and slots[0][1] == 16383 and slots[0][2][1] == BW,
      slots)
check("CLUSTER KEYSLOT as Redis", bw.execute_command("CLUSTER", "KEYSLOT", "{user}x") ==
      direct.keyslot("{user}x"))
check("CLUSTER COUNTKEYSINSLOT from the slot's master",
      bw.execute_command("CLUSTER", "COUNTKEYSINSLOT", direct.keyslot("key:1")) ==
      node.redis_connection.execute_command("CLUSTER", "COUNTKEYSINSLOT", direct.keyslot("key:1")))
rc = RedisCluster(host="127.0.0.1", port=BW)
for i in range(10000):
    rc.set(f"rc:{i}", i)
check("redis-py RedisCluster through bulwark: 10,000 keys",
      all(int(direct.get(f"rc:{i}")) == i for i in range(0, 10000, 7)))
pipe = rc.pipeline()
for i in range(200):
    pipe.incr(f"rcp:{i}")
check("redis-py RedisCluster pipeline", pipe.execute() == [1] * 200)

# ---- sessions: transactions, blocking commands, pub/sub ------------------------
for tag in ("{a}", "{b}", "{c}", "{d}"):
    p = bw.pipeline(transaction=True)
    p.set(f"{tag}x", 1).incr(f"{tag}x").get(f"{tag}x")
    res = p.execute()
    check(f"MULTI/EXEC on hash-tagged keys {tag} (slot {direct.keyslot(tag + 'x')})",
          res == [True, 2, b"2"], res)
    check(f"  … applied on the cluster {tag}", direct.get(f"{tag}x") == b"2")
tags = ["{t%d}" % i for i in range(20)]
ka = tags[0] + "y"
kb = next(t + "y" for t in tags if direct.get_node_from_key(t + "y").port !=
          direct.get_node_from_key(ka).port)
r = raw(BW, ["MULTI"], ["SET", ka, "1"], ["SET", kb, "1"], ["EXEC"])
check("a transaction over two masters: CROSSSLOT, then EXECABORT",
      r == b"+OK\r\n+QUEUED\r\n-CROSSSLOT Keys in request don't hash to the same slot\r\n"
           b"-EXECABORT Transaction discarded because of previous errors.\r\n", r)
check("  … nothing applied", direct.get(ka) is None and direct.get(kb) is None)
check("MULTI then EXEC at once: Redis's empty transaction",
      raw(BW, ["MULTI"], ["EXEC"]) == b"+OK\r\n*0\r\n")
steps = []  # a client that waits for each reply (redis-cli, Redis's own test client)
s = socket.create_connection(("127.0.0.1", BW))
s.settimeout(2)
for c in (["MULTI"], ["SET", kb, "2"], ["INCR", kb], ["EXEC"]):
    s.sendall(b"*%d\r\n" % len(c) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in c))
    try:
        steps.append(s.recv(100))
    except socket.timeout:
        steps.append(b"(no reply)")
        break
s.close()
check("MULTI answered before the transaction's first command is sent",
      steps == [b"+OK\r\n", b"+QUEUED\r\n", b"+QUEUED\r\n", b"*2\r\n+OK\r\n:3\r\n"], steps)
check("  … applied on the master of its keys", direct.get(kb) == b"3")
import threading
got = []
t = threading.Thread(target=lambda: got.append(redis.Redis(port=BW).blpop("{q}list", 5)))
t.start()
time.sleep(0.3)
bw.lpush("{q}list", "item")
t.join()
check("BLPOP on a key of any master gets its item", got == [(b"{q}list", b"item")], got)
sub = redis.Redis(port=BW).pubsub()
sub.subscribe("chan")
time.sleep(0.2)
bw.publish("chan", "hello")
msg = None
for _ in range(50):
    msg = sub.get_message(timeout=0.1)
    if msg and msg["type"] == "message":
        break
check("SUBSCRIBE/PUBLISH through bulwark", msg is not None and msg.get("data") == b"hello", msg)

# ---- node-wide commands reach every master (Redis's test suite in cluster mode) ----
slot0_port = direct.nodes_manager.get_node_from_slot(0).port
far = next("{far%d}" % i for i in range(100)  # a key of another master than slot 0's
           if direct.get_node_from_key("{far%d}" % i).port != slot0_port)
bw.config_set("hash-max-listpack-entries", 7)
got = [redis.Redis(port=m.port).config_get("hash-max-listpack-entries") for m in masters]
check("CONFIG SET reaches every master",
      all(g == {"hash-max-listpack-entries": "7"} for g in got), got)
bw.config_set("hash-max-listpack-entries", 128)
for i in range(30):
    bw.get(f"key:{i}")  # keyspace hits on every master
bw.config_resetstat()
hits = [redis.Redis(port=m.port).info("stats")["keyspace_hits"] for m in masters]
check("CONFIG RESETSTAT reaches every master", hits == [0] * len(masters), hits)
blocked = []
t = threading.Thread(target=lambda: blocked.append(redis.Redis(port=BW).blpop(far + "list", 5)))
t.start()
n = 0
for _ in range(50):
    n = bw.info("clients")["blocked_clients"]
    if n:
        break
    time.sleep(0.05)
check("INFO blocked_clients counts a client blocked on another master than slot 0's", n == 1, n)
bw.lpush(far + "list", "x")
t.join()
blocked = []
cb = redis.Redis(port=BW)
cid = cb.client_id()
t = threading.Thread(target=lambda: blocked.append(cb.blpop(far + "list", 5)))
t.start()
unblocked = 0
for _ in range(50):
    unblocked = bw.client_unblock(cid)
    if unblocked:
        break
    time.sleep(0.05)
t.join()
check("CLIENT UNBLOCK of a client blocked on another master than slot 0's",
      unblocked == 1 and blocked == [None], (unblocked, blocked))
ks = bw.info("keyspace").get("db0", {}).get("keys", 0)
total = sum(redis.Redis(port=m.port).dbsize() for m in masters)
check("INFO keyspace: the keys of every master", ks == total, (ks, total))
bw.config_set("busy-reply-threshold", 100)  # the kill is served within 0.1 s, not 5 s
evaled = []
def busy():
    try:
        redis.Redis(port=BW).eval("while true do end", 1, far + "k")
    except redis.ResponseError as e:
        evaled.append(str(e))
t = threading.Thread(target=busy, daemon=True)  # a script never killed must not hang the run
t.start()
killed = None
for _ in range(50):
    time.sleep(0.05)
    try:
        killed = bw.script_kill()
        break
    except redis.ResponseError as e:
        killed = str(e)  # NOTBUSY: not started yet
t.join(5)
check("SCRIPT KILL of a script running on another master than slot 0's",
      killed is True and len(evaled) == 1 and "killed" in evaled[0], (killed, evaled))
if t.is_alive():  # not killed: stop it on its node, or every later check fails
    redis.Redis(port=direct.get_node_from_key(far).port).script_kill()
script_done = time.time()  # that master's shared requests wait busy-reply-threshold after it
bw.config_set("busy-reply-threshold", 5000)
bw.config_set("deny-commands", "SHUTDOWN")  # DEBUG allowed (the nodes allow it: run.sh)
bw.set(far, "v")
obj = raw(BW, ["DEBUG", "OBJECT", far])
check("DEBUG OBJECT of a key on another master than slot 0's", obj.startswith(b"+Value at:"), obj)
bw.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 0)
for i in range(30):
    bw.set(f"exp:{i}", 1, px=1)
time.sleep(0.3)  # active expiry would have taken them by now (10 cycles a second)
left = sum(redis.Redis(port=m.port).info("keyspace").get("db0", {}).get("expires", 0)
           for m in masters)
check("DEBUG SET-ACTIVE-EXPIRE 0 reaches every master", left == 30, left)
bw.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", 1)
bw.config_set("deny-commands", "SHUTDOWN DEBUG")

# ---- MOVED and ASK: a slot moved from one master to another ----------------------
key = "moving:key"
bw.set(key, "here")
slot = direct.keyslot(key)
src = direct.get_node_from_key(key)
dst = [m for m in masters if m.port != src.port][0]
src_r, dst_r = redis.Redis(port=src.port), redis.Redis(port=dst.port)
src_id = src_r.execute_command("CLUSTER", "MYID").decode()
dst_id = dst_r.execute_command("CLUSTER", "MYID").decode()
dst_r.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
src_r.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
make_hot(key)  # cached, guarded by the source master's watch
src_r.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", key)
check("ASK followed (the key is on the importing node)", bw.get(key) == b"here")
dst_r.execute_command("ASKING")
dst_r.execute_command("SET", key, "asked")  # on the importing node, behind bulwark's back
check("  … a hot key's write on the importing node is read through bulwark (never the old "
      "value)", seen_within(key, b"asked") is not None and
      all(bw.get(key) == b"asked" for _ in range(300)))
for m in masters:
    redis.Redis(port=m.port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
time.sleep(0.5)
check("MOVED followed (the slot has a new master)", bw.get(key) == b"asked")
make_hot(key)
dst_r.set(key, "new owner")
check("  … a hot key's write on its new master is read through bulwark at once",
      seen_within(key, b"new owner") is not None and
      all(bw.get(key) == b"new owner" for _ in range(300)))
bw.set(key, "there")
check("writes follow the move", dst_r.get(key) == b"there")
stats = bw.info("upstream")
check("INFO counts the MOVED", stats.get("cluster_moved", 0) >= 1, stats)

bw.flushall()
check("FLUSHALL empties every master",
      sum(redis.Redis(port=m.port).dbsize() for m in masters) == 0)

# ---- a slot changing hands: MOVED back and forth -------------------------------
# redis-cli --cluster reshard gives the slot to its new owner node by node, the
# old owner first: for a moment the old owner answers MOVED to the new one and
# the new one, still importing, MOVED back. Bulwark asks the node that sent it
# away with ASKING instead of bouncing until its five tries are used.
key = "pingpong:key"
slot = direct.keyslot(key)
src = direct.get_node_from_key(key)
dst = [m for m in masters if m.port != src.port][0]
src_r, dst_r = redis.Redis(port=src.port), redis.Redis(port=dst.port)
src_id = src_r.execute_command("CLUSTER", "MYID").decode()
dst_id = dst_r.execute_command("CLUSTER", "MYID").decode()
bw.set(key, "v1")
dst_r.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
src_r.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
src_r.execute_command("MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS", key)
src_r.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
check("MOVED back and forth (old owner done, new one importing): served",
      raw(BW, ["GET", key], ["SET", key, "v2"]) == b"$2\r\nv1\r\n+OK\r\n",
      raw(BW, ["GET", key]))
for m in masters:
    redis.Redis(port=m.port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
check("  … the write is on the new owner", dst_r.get(key) == b"v2")

# ---- a master that stops answering: upstream-timeout on every node ---------------
# (CLIENT PAUSE: the node's cluster bus still runs, so no failover)
other = [m for m in masters if m.port != NODES[0]][0]
okey = next(k for k in (f"pause:{i}" for i in range(1000))
            if direct.get_node_from_key(k).port == other.port)
bw.set(okey, "x")
if other.port == direct.get_node_from_key(far).port:  # (see script_done)
    time.sleep(max(0.0, 5.5 - (time.time() - script_done)))
redis.Redis(port=other.port).execute_command("CLIENT", "PAUSE", 6500, "ALL")
t0 = time.time()
try:
    got = redis.Redis(port=BW, socket_timeout=20).get(okey)
except redis.ResponseError as e:
    got = e
took = time.time() - t0
check("a paused master (not the upstream node): upstream-timeout answers (%.1f s)" % took,
      isinstance(got, redis.ResponseError) and "timed out" in str(got) and took < 6.2, (got, took))
time.sleep(max(0, 7 - took))
for _ in range(50):
    try:
        if bw.get(okey) == b"x":
            break
    except redis.ResponseError:
        pass
    time.sleep(0.1)
check("  … served again once it answers", bw.get(okey) == b"x")

# ---- half-closed sessions --------------------------------------------------------
# CLIENT REPLY OFF, then keys of every master (the session set aside for the
# others), then shutdown(SHUT_WR): what Redis answers, then the close at once.
bw.set("hc:4", "v4")
check("  (hc:1 … hc:4 span masters)",
      len({direct.get_node_from_key(f"hc:{i}").port for i in range(1, 5)}) > 1)
hc = socket.create_connection(("127.0.0.1", BW))
hc.settimeout(5)
hc.sendall(b"CLIENT REPLY OFF\r\nSET hc:1 off\r\nSET hc:2 off\r\nCLIENT REPLY ON\r\n"
           b"SET hc:3 on\r\nGET hc:4\r\n")
hc.shutdown(socket.SHUT_WR)
t0, got = time.time(), b""
try:
    while True:
        chunk = hc.recv(65536)
        if not chunk:
            break
        got += chunk
except socket.timeout:
    pass
hc.close()
check("CLIENT REPLY OFF, keys on several masters, then EOF: Redis's replies, closed at once",
      got == b"+OK\r\n+OK\r\n$2\r\nv4\r\n" and time.time() - t0 < 2,
      (got, time.time() - t0))

# ---- the upstream node (master of slot 0) killed: its replica takes over ----------
# Bulwark must read the new map from a surviving node (it used to ask only the
# master of slot 0 and the upstream node: the dead one, forever).
import os
import signal
seed = redis.Redis(port=NODES[0])
check("the upstream node is a master", seed.execute_command("ROLE")[0] == b"master")
fkeys = [k for k in (f"fo:{i}" for i in range(300))
         if direct.get_node_from_key(k).port == NODES[0]][:20]
for k in fkeys:
    bw.set(k, k)
time.sleep(0.5)  # replicated
hot = fkeys[1]
make_hot(hot)  # cached, guarded by the watch of the master about to die
h0 = bw.info("hotkeys")["hotkey_hits"]
check("a hot key of the upstream node served from the cache", bw.get(hot) == hot.encode() and
      bw.info("hotkeys")["hotkey_hits"] > h0)
keep = [node_key(m.port, "keep") for m in masters if m.port != NODES[0]]
for k in keep:
    bw.set(k, k)
    make_hot(k)
miss0 = bw.info("hotkeys")["hotkey_misses"]
# a client WATCHing a key of that master: its connection ends with the master's,
# so its EXEC can never commit unwatched
wc = socket.create_connection(("127.0.0.1", BW))
wc.settimeout(10)
wc.sendall(b"WATCH %s\r\n" % fkeys[0].encode())
check("WATCH on the master about to die", wc.recv(100) == b"+OK\r\n")
os.kill(int(seed.info("server")["process_id"]), signal.SIGKILL)
for _ in range(100):  # its watch lost (the gate of its master opens)
    if bw.info("upstream").get("cluster_gates_closed") == 2:
        break
    time.sleep(0.01)
kept = all(bw.get(k) == k.encode() for k in keep for _ in range(100))
miss1 = bw.info("hotkeys")["hotkey_misses"]
check("  … its watch lost: the other masters' hot keys stay cached (misses +%d)" % (miss1 - miss0),
      kept and miss1 == miss0, (kept, miss1 - miss0))
t0, served = time.time(), False
while not served and time.time() - t0 < 30:
    try:
        served = bw.set(fkeys[0], "after") and bw.get(fkeys[0]) == b"after"
    except redis.ResponseError:
        time.sleep(0.1)
check("the upstream node killed: its slots served again through bulwark (%.1f s)"
      % (time.time() - t0), served)
check("  … with the values written before", [bw.get(k) for k in fkeys[1:]] ==
      [k.encode() for k in fkeys[1:]])
promoted = direct.get_node_from_key(fkeys[0])
for _ in range(100):  # the promoted replica, as the cluster names it now
    direct = RedisCluster(host="127.0.0.1", port=[p for p in NODES if p != NODES[0]][0])
    promoted = direct.get_node_from_key(hot)
    if promoted.port != NODES[0]:
        break
    time.sleep(0.1)
make_hot(hot)
redis.Redis(port=promoted.port).set(hot, "after failover")  # behind bulwark's back
reads = [bw.get(hot) for _ in range(300)]
check(f"  … a hot key written on the promoted replica ({promoted.port}) itself: read at once, "
      "never the old value", reads == [b"after failover"] * 300, reads[:3])
try:
    wc.sendall(b"MULTI\r\nSET %s watched\r\nEXEC\r\n" % fkeys[0].encode())
    rest = wc.recv(100)
except (socket.timeout, OSError) as e:
    rest = e
check("  … the WATCHing client's connection ended, its EXEC not run",
      rest in (b"",) or isinstance(rest, ConnectionResetError), rest)
check("  … nothing committed", bw.get(fkeys[0]) == b"after")
print("%d failed" % len(failures))
sys.exit(1 if failures else 0)
