"""A small raftstore wire-protocol client for the integration tests.

It speaks docs/protocol.md directly (frames, CRC-32C, request ids) so the
tests can drive real raftstored processes, send malformed frames on
purpose, and record histories without depending on rsctl.
"""
import socket
import struct

WIRE_VERSION = 1
RESPONSE = 0x80
GET, RANGE, GRV, COMMIT, WATCH, STATUS, MEMBERS = 1, 2, 3, 4, 5, 6, 7
TERM = 12
LINEARIZABLE, SERIALIZABLE, AT_VERSION = 0, 1, 2
MUT_SET, MUT_CLEAR, MUT_CLEAR_RANGE = 1, 2, 3

# rs_error codes (raftstore/lib/rs_error.h: index in RS_ERROR_TABLE)
_ERRORS = ["ok", "ENOMEM", "EIO", "ENOSPC", "ECORRUPT", "ETORN", "EFORMAT",
           "ETOOLARGE", "ETOOOLD", "EFUTURE", "ENOTFOUND", "EINVAL",
           "EEXIST", "ECLOSED", "EFAILED", "EVERSION", "EGAP", "ESHUTDOWN",
           "ECONFLICT", "EUNAVAILABLE", "EUNKNOWN", "EPROTO", "ENOTLEADER",
           "ERECOVERING", "ECOMPACTED", "ETIMEOUT"]
CODE = {name: i for i, name in enumerate(_ERRORS)}
RETRYABLE = {CODE[n] for n in ("ECONFLICT", "ETOOOLD", "EUNAVAILABLE",
                               "ENOTLEADER", "ERECOVERING", "ETIMEOUT")}


def error_name(code):
    return _ERRORS[code] if 0 <= code < len(_ERRORS) else "E%d" % code


_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ (0x82F63B78 if _c & 1 else 0)
    _TABLE.append(_c)


def crc32c(data, crc=0):
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def frame(ftype, request_id, body, flags=0):
    rest = struct.pack("<BBHQ", WIRE_VERSION, ftype, flags, request_id) + body
    return struct.pack("<II", len(rest) + 4, crc32c(rest)) + rest


def bytes_field(b):
    return struct.pack("<I", len(b)) + b


def mutations(ops):
    """ops: list of ("set", k, v) | ("clear", k) | ("clear_range", b, e)."""
    out = struct.pack("<I", len(ops))
    for op in ops:
        if op[0] == "set":
            out += bytes([MUT_SET]) + bytes_field(op[1]) + bytes_field(op[2])
        elif op[0] == "clear":
            out += bytes([MUT_CLEAR]) + bytes_field(op[1]) + bytes_field(b"")
        else:
            out += bytes([MUT_CLEAR_RANGE]) + bytes_field(op[1]) + bytes_field(op[2])
    return out


class Reader:
    def __init__(self, body):
        self.b, self.p = body, 0

    def u8(self):
        v = self.b[self.p]
        self.p += 1
        return v

    def u32(self):
        v = struct.unpack_from("<I", self.b, self.p)[0]
        self.p += 4
        return v

    def u64(self):
        v = struct.unpack_from("<Q", self.b, self.p)[0]
        self.p += 8
        return v

    def bytes(self):
        n = self.u32()
        v = self.b[self.p:self.p + n]
        self.p += n
        return bytes(v)


class Error(Exception):
    def __init__(self, code, message):
        super().__init__("%s: %s" % (error_name(code), message))
        self.code, self.message = code, message


class Conn:
    """One connection to one node; synchronous request/response."""

    def __init__(self, addr, timeout=10.0):
        host, port = addr.rsplit(":", 1)
        self.addr = addr
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.next_id = 1
        self.buf = b""

    def close(self):
        self.sock.close()

    def send_raw(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        while True:
            if len(self.buf) >= 8:
                length, crc = struct.unpack_from("<II", self.buf, 0)
                if len(self.buf) >= 4 + length:
                    rest = self.buf[8:4 + length]
                    self.buf = self.buf[4 + length:]
                    if crc32c(rest) != crc:
                        raise IOError("bad crc from server")
                    _, ftype, flags, rid = struct.unpack_from("<BBHQ", rest, 0)
                    return ftype, flags, rid, rest[12:]
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by %s" % self.addr)
            self.buf += chunk

    def call(self, ftype, body):
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(frame(ftype, rid, body))
        while True:
            rtype, flags, got, rbody = self.recv_frame()
            if got == rid or got == 0:
                break
        r = Reader(rbody)
        status = r.u32()
        message = r.bytes().decode("utf-8", "replace")
        if status != 0:
            raise Error(status, message)
        return r

    def get(self, key, mode=LINEARIZABLE, version=0):
        r = self.call(GET, bytes([mode]) + struct.pack("<Q", version) + bytes_field(key))
        served, rv, found, fv = r.u8(), r.u64(), r.u8(), r.u64()
        value = r.bytes()
        return (value if found else None), rv, served

    def range(self, begin, end=b"", limit=0, mode=LINEARIZABLE, version=0):
        r = self.call(RANGE, bytes([mode]) + struct.pack("<Q", version) +
                      bytes_field(begin) + bytes_field(end) + struct.pack("<I", limit))
        served, rv, more, n = r.u8(), r.u64(), r.u8(), r.u32()
        items = []
        for _ in range(n):
            k, v, ver = r.bytes(), r.bytes(), r.u64()
            items.append((k, v, ver))
        return items, more, rv

    def grv(self):
        return self.call(GRV, b"").u64()

    def commit(self, ops, read_version=0, read_ranges=()):
        body = struct.pack("<QI", read_version, len(read_ranges))
        for b, e in read_ranges:
            body += bytes_field(b) + bytes_field(e)
        body += bytes_field(mutations(ops))
        return self.call(COMMIT, body).u64()

    def put(self, key, value):
        return self.commit([("set", key, value)])

    def term(self, cluster_id, leader_id, term=0):
        """TERM: (answering node id, its Raft term)."""
        r = self.call(TERM, bytes_field(cluster_id) +
                      struct.pack("<QQ", leader_id, term))
        return r.u64(), r.u64()

    def status(self):
        import json
        return json.loads(self.call(STATUS, b"").bytes())


def decode_mutations(body):
    """A batch body -> list of ("set", k, v) | ("clear", k) | ("clear_range", b, e)."""
    r = Reader(body)
    out = []
    for _ in range(r.u32()):
        t, a, b = r.u8(), r.bytes(), r.bytes()
        out.append(("set", a, b) if t == MUT_SET else
                   ("clear", a) if t == MUT_CLEAR else ("clear_range", a, b))
    return out


class Watch:
    """A WATCH stream on its own connection."""

    def __init__(self, addr, begin, end=b"", from_version=0, timeout=10.0):
        self.conn = Conn(addr, timeout)
        self.rid = 77
        self.conn.send_raw(frame(WATCH, self.rid, bytes_field(begin) +
                                 bytes_field(end) + struct.pack("<Q", from_version)))
        _, _, _, body = self.conn.recv_frame()
        r = Reader(body)
        status = r.u32()
        message = r.bytes().decode("utf-8", "replace")
        if status != 0:
            self.conn.close()
            raise Error(status, message)

    def next(self):
        """(version, mutations) of the next event."""
        _, _, _, body = self.conn.recv_frame()
        r = Reader(body)
        status = r.u32()
        message = r.bytes().decode("utf-8", "replace")
        if status != 0:
            raise Error(status, message)
        return r.u64(), decode_mutations(r.bytes())

    def close(self):
        self.conn.close()
