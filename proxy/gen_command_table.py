#!/usr/bin/env python3
"""Generate proxy/command_table.inc, bulwark's built-in Redis command table.

Usage: python3 proxy/gen_command_table.py HOST PORT > proxy/command_table.inc

Talks RESP2 to a running redis-server over a raw socket (standard library
only), sends COMMAND and INFO server, and prints one C initializer per command
and per subcommand (CONFIG GET, CLIENT SETNAME, ...): parent, name, arity,
flags, first key, last key, key step. The output is included by
proxy/command.c inside the definition of cmd_builtin_entries[]; the entry
struct is defined there. Entries are sorted (commands by name, each command's
subcommands right after it) so the file diffs cleanly between runs.

The reference server is redis-server 7.0.15. Exits non-zero, printing nothing
to stdout, on a connection or protocol error or on a flag name that
proxy/command.h has no CMD_ constant for.
"""

import socket
import sys

# Every flag name Redis 7.0 can report in COMMAND (server.c,
# addReplyCommandFlags) mapped to its constant in proxy/command.h.
FLAG_CONSTANTS = {
    "write": "CMD_WRITE",
    "readonly": "CMD_READONLY",
    "denyoom": "CMD_DENYOOM",
    "module": "CMD_MODULE",
    "admin": "CMD_ADMIN",
    "pubsub": "CMD_PUBSUB",
    "noscript": "CMD_NOSCRIPT",
    "blocking": "CMD_BLOCKING",
    "loading": "CMD_LOADING",
    "stale": "CMD_STALE",
    "skip_monitor": "CMD_SKIP_MONITOR",
    "skip_slowlog": "CMD_SKIP_SLOWLOG",
    "asking": "CMD_ASKING",
    "fast": "CMD_FAST",
    "no_auth": "CMD_NO_AUTH",
    "may_replicate": "CMD_MAY_REPLICATE",
    "sentinel": "CMD_SENTINEL",
    "only_sentinel": "CMD_ONLY_SENTINEL",
    "no_mandatory_keys": "CMD_NO_MANDATORY_KEYS",
    "protected": "CMD_PROTECTED",
    "no_async_loading": "CMD_NO_ASYNC_LOADING",
    "no_multi": "CMD_NO_MULTI",
    "movablekeys": "CMD_MOVABLEKEYS",
    "allow_busy": "CMD_ALLOW_BUSY",
}


class ProtocolError(Exception):
    """The server sent something that is not RESP2 or an error reply."""


class Conn:
    """A blocking RESP2 connection with a read buffer."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg.encode() if isinstance(arg, str) else arg
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(out))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ProtocolError("connection closed by server")
        self.buf += chunk

    def _line(self):
        while True:
            end = self.buf.find(b"\r\n")
            if end >= 0:
                line, self.buf = self.buf[:end], self.buf[end + 2:]
                return line
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def reply(self):
        """Read one reply: str, int, bytes, list or None; raise on -ERR."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise ProtocolError("server error: " + rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise ProtocolError("unexpected reply type %r" % kind)


def text(value):
    """A COMMAND field as str (bulk strings arrive as bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def c_flags(names, fullname):
    """The C expression for a list of Redis flag names."""
    consts = []
    for name in names:
        name = text(name)
        if name not in FLAG_CONSTANTS:
            raise ProtocolError("%s: unknown flag %r" % (fullname, name))
        consts.append(FLAG_CONSTANTS[name])
    return " | ".join(consts) if consts else "0"


def entry(parent, doc):
    """One C initializer line from one COMMAND entry (7.0 layout)."""
    fullname = text(doc[0]).lower()
    name = fullname.split("|", 1)[1] if parent else fullname
    arity, flags, first, last, step = doc[1], doc[2], doc[3], doc[4], doc[5]
    parent_c = '"%s"' % parent if parent else "NULL"
    return '    {%s, "%s", %d, %s, %d, %d, %d},' % (
        parent_c, name, arity, c_flags(flags, fullname), first, last, step)


def server_version(conn):
    """redis_version from INFO server, or "unknown"."""
    conn.send("INFO", "server")
    for line in conn.reply().decode().splitlines():
        if line.startswith("redis_version:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def generate(host, port):
    """The whole command_table.inc text for the server at host:port."""
    conn = Conn(host, port)
    version = server_version(conn)
    conn.send("COMMAND")
    docs = conn.reply()
    body = []
    nsub = 0
    for doc in sorted(docs, key=lambda d: text(d[0]).lower()):
        body.append(entry(None, doc))
        parent = text(doc[0]).lower()
        subs = doc[9] if len(doc) > 9 and doc[9] else []
        for sub in sorted(subs, key=lambda d: text(d[0]).lower()):
            body.append(entry(parent, sub))
            nsub += 1
    head = [
        "/*",
        " * Generated by proxy/gen_command_table.py from the COMMAND reply of",
        " * redis-server %s: %d commands, %d subcommands. Do not edit;" % (
            version, len(docs), nsub),
        " * regenerate with",
        " *   python3 proxy/gen_command_table.py HOST PORT > proxy/command_table.inc",
        " * Fields: parent (NULL for a command), name, arity, flags, first key,",
        " * last key, key step. Included by proxy/command.c.",
        " */",
    ]
    return "\n".join(head + body) + "\n"


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: %s HOST PORT > proxy/command_table.inc\n" % argv[0])
        return 2
    try:
        out = generate(argv[1], int(argv[2]))
    except (OSError, ProtocolError, ValueError) as e:
        sys.stderr.write("gen_command_table: %s\n" % e)
        return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
