"""redis-py (Debian's python3-redis) through bulwark: cache-aside, pipelines,
transactions, pub/sub, blocking pops, databases. Usage: python3 py_basic.py PORT"""
import sys
import threading
import time

import redis

port = int(sys.argv[1])
r = redis.Redis(port=port, decode_responses=True)
assert r.ping()
r.delete("py:user:1", "py:n", "py:q")
assert r.get("py:user:1") is None
assert r.set("py:user:1", "bob", ex=60)
assert r.get("py:user:1") == "bob"
assert r.mget("py:user:1", "py:none") == ["bob", None]
r.hset("py:h", mapping={"a": "1", "b": "2"})
assert r.hgetall("py:h") == {"a": "1", "b": "2"}
assert r.hgetall("py:nohash") == {}

p = r.pipeline(transaction=True)
p.incr("py:n").incr("py:n").get("py:n")
assert p.execute() == [1, 2, "2"]
p = r.pipeline(transaction=False)
for i in range(100):
    p.set(f"py:k{i}", i).get(f"py:k{i}")
out = p.execute()
assert out[1::2] == [str(i) for i in range(100)]

d5 = redis.Redis(port=port, db=5, decode_responses=True)
d5.set("py:db", "five")
assert r.get("py:db") is None and d5.get("py:db") == "five"

ps = r.pubsub()
ps.subscribe("py:ch")
assert ps.get_message(timeout=2)["type"] == "subscribe"
assert r.publish("py:ch", "hi") == 1
m = ps.get_message(timeout=2)
assert m["type"] == "message" and m["data"] == "hi", m
ps.unsubscribe("py:ch")
ps.close()

assert r.blpop("py:q", timeout=0.05) is None
threading.Timer(0.1, lambda: redis.Redis(port=port).rpush("py:q", "job")).start()
assert r.blpop("py:q", timeout=5) == ("py:q", "job")

with r.lock("py:lock", timeout=5):
    assert r.get("py:lock") is not None
print("redis-py", redis.__version__, "ok")
