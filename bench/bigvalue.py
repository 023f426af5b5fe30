#!/usr/bin/env python3
"""bench/bigvalue.py: time SET and GET of big values (1 MB, 64 MB, 512 MB by
default) on Redis directly and through bulwark, back to back, each the best
of --runs. Raw sockets, one request at a time, the value sent with one
sendall() of a preallocated buffer and the reply read into a preallocated
bytearray with recv_into(), so the client costs about a memcpy per byte.

    python3 bench/bigvalue.py --redis 6379 --bulwark 6380 [--sizes 1,64,512] [--runs 3]

Prints one Markdown table row per size and operation: seconds on each
target (best of --runs) and the ratio bulwark / redis, then the ratio of
the medians (the machine is shared: the best run hides outliers).
"""
import argparse
import socket
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_line(s, buf):
    while b"\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise RuntimeError("connection closed")
        buf += d
    i = buf.index(b"\r\n")
    return bytes(buf[:i]), buf[i + 2:]


def do_set(s, key, value):
    hdr = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, len(value))
    t = time.perf_counter()
    s.sendall(hdr)
    s.sendall(value)
    s.sendall(b"\r\n")
    line, _ = read_line(s, bytearray())
    dt = time.perf_counter() - t
    assert line == b"+OK", line
    return dt


def do_get(s, key, size, into):
    t = time.perf_counter()
    s.sendall(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key))
    line, rest = read_line(s, bytearray())
    assert line == b"$%d" % size, line[:40]
    need = size + 2
    view = memoryview(into)
    got = len(rest)
    view[:got] = rest
    while got < need:
        n = s.recv_into(view[got:need])
        if n == 0:
            raise RuntimeError("connection closed")
        got += n
    dt = time.perf_counter() - t
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", type=int, required=True)
    ap.add_argument("--bulwark", type=int, required=True)
    ap.add_argument("--sizes", default="1,64,512", help="MB, comma-separated")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    print("| value | op | redis s | bulwark s | ratio | redis median s | bulwark median s | median ratio |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mb in [int(x) for x in a.sizes.split(",")]:
        size = mb << 20
        value = b"v" * size
        into = bytearray(size + 2)
        key = b"bigvalue:%d" % mb
        res = {}
        for name, port in (("redis", a.redis), ("bulwark", a.bulwark)):
            s = connect(port)
            sets, gets = [], []
            for _ in range(a.runs):
                sets.append(do_set(s, key, value))
                gets.append(do_get(s, key, size, into))
            s.sendall(b"*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n" % (len(key), key))
            read_line(s, bytearray())
            s.close()
            res[name] = (sorted(sets), sorted(gets))
        for i, op in enumerate(("SET", "GET")):
            r, b = res["redis"][i], res["bulwark"][i]
            rm, bm = r[len(r) // 2], b[len(b) // 2]
            print("| %d MB | %s | %.4f | %.4f | %.2f | %.4f | %.4f | %.2f |"
                  % (mb, op, r[0], b[0], b[0] / r[0], rm, bm, bm / rm))
        del value, into


if __name__ == "__main__":
    main()
