#!/usr/bin/env python3
"""Standalone reader for the pws trace format, version 1.x, written from FORMAT.md alone.

Usage: python3 pws_read.py TRACE [--skip-bad-blocks]

Prints one JSON document describing the trace on stdout and exits 0.  On corruption
(without --skip-bad-blocks) it prints an error naming the byte offset to stderr and exits 1;
for a file that is not a pws trace (or one of an unsupported major version) it exits 2.

Only the standard library is required; the optional ``zstandard`` package is used to
decompress compressed blocks (without it their payload is null and a "note" says why).
"""

import json
import math
import struct
import sys

try:  # optional dependency
    import zstandard as _zstd
except Exception:  # pragma: no cover - depends on the environment
    _zstd = None

# --------------------------------------------------------------------------------------------
# Constants from FORMAT.md

FILE_MAGIC = b"\x89PWS\r\n\x1a\n"
FILE_HEADER_LEN = 24
KNOWN_MAJOR = 1
KNOWN_FILE_FLAGS = 0  # no flags are defined in 1.0
BLOCK_SYNC = b"PWBK"
BLOCK_HEADER_LEN = 24
FLAG_ZSTD = 0x0001
KNOWN_BLOCK_FLAGS = FLAG_ZSTD
# Block flag bits 0-7 change how the payload is read; bits 8-15 are informational.
BLOCK_PAYLOAD_FLAGS_MASK = 0x00FF
MAX_LEN = 64 * 1024 * 1024
MAX_ZSTD_RATIO = 32768
END_MAGIC = b"PWSEND\x00\x00"
KIND_TRACE_INFO = 1
KIND_END = 9
U64_MASK = (1 << 64) - 1

KIND_NAMES = {
    1: "trace-info",
    2: "perf-data",
    3: "energy",
    4: "cgroup-events",
    5: "activations",
    6: "container-events",
    7: "statistics",
    8: "clock-sync",
    9: "end",
    10: "cpu-stat",
    11: "gpu",
    12: "perf-index",
}

# --------------------------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78)


def _make_crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _make_crc_table()


def crc32c(data, start=0, end=None):
    if end is None:
        end = len(data)
    table = _CRC_TABLE
    crc = 0xFFFFFFFF
    for b in memoryview(data)[start:end]:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


# --------------------------------------------------------------------------------------------
# Errors


class NotATrace(Exception):
    """The input is not a pws trace we can read (exit 2)."""


class Corrupt(Exception):
    """Corruption at a byte offset (exit 1, or skipped with --skip-bad-blocks)."""

    def __init__(self, offset, reason, kind=None, detail=None):
        super().__init__(reason)
        self.offset = offset
        self.reason = reason
        self.kind = kind
        self.detail = detail

    def message(self):
        msg = "%s at byte offset %d" % (self.reason, self.offset)
        if self.kind is not None:
            name = KIND_NAMES.get(self.kind)
            msg += " (block kind %d%s)" % (self.kind, " " + name if name else "")
        if self.detail:
            msg += ": " + self.detail
        return msg


class Malformed(Exception):
    """A payload (with a valid CRC) does not decode as its kind says."""


# --------------------------------------------------------------------------------------------
# Primitive decoding


class Buf:
    __slots__ = ("data", "pos", "end")

    def __init__(self, data, pos=0, end=None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def remaining(self):
        return self.end - self.pos

    def take(self, n, what="field"):
        if n < 0 or n > self.end - self.pos:
            raise Malformed(
                "%s needs %d bytes but only %d remain" % (what, n, self.end - self.pos)
            )
        p = self.pos
        self.pos = p + n
        return self.data[p : p + n]

    def u8(self):
        return self.take(1, "u8")[0]

    def u16(self):
        return struct.unpack("<H", self.take(2, "u16"))[0]

    def u32(self):
        return struct.unpack("<I", self.take(4, "u32"))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8, "u64"))[0]

    def f64(self):
        v = struct.unpack("<d", self.take(8, "f64"))[0]
        # JSON has no NaN/Infinity; represent non-finite values as null.
        return v if math.isfinite(v) else None

    def varint(self):
        result = 0
        shift = 0
        for i in range(10):
            if self.pos >= self.end:
                raise Malformed("truncated varint")
            b = self.data[self.pos]
            self.pos += 1
            if i == 9 and b > 1:
                raise Malformed("varint overflows 64 bits")
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
        raise Malformed("varint longer than 10 bytes")  # unreachable: 10th byte <= 1

    def svarint(self):
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def opt(self):
        n = self.varint()
        return None if n == 0 else n - 1

    def bytes_(self):
        n = self.varint()
        return bytes(self.take(n, "bytes"))

    def str_(self):
        raw = self.bytes_()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Malformed("str is not valid UTF-8 (%s)" % e.reason)

    def list_(self, item):
        n = self.varint()
        out = []
        # Every item consumes at least one byte, so a bogus count fails quickly.
        for _ in range(n):
            out.append(item(self))
        return out

    def record(self, fields):
        """record { ... }: varint length n, then n bytes; unknown trailing bytes skipped."""
        n = self.varint()
        if n > self.end - self.pos:
            raise Malformed(
                "record length %d exceeds the %d bytes remaining" % (n, self.end - self.pos)
            )
        sub = Buf(self.data, self.pos, self.pos + n)
        value = fields(sub)
        self.pos += n
        return value

    def list_records(self, fields):
        return self.list_(lambda b: b.record(fields))


# --------------------------------------------------------------------------------------------
# Payload decoders


def _cpu_info(b):
    return {
        "cpu": b.varint(),
        "online": b.u8(),
        "package": b.varint(),
        "die": b.varint(),
        "core": b.varint(),
        "numa_node": b.varint(),
    }


def _perf_event(b):
    return {
        "name": b.str_(),
        "pmu": b.str_(),
        "attr": b.bytes_().hex(),
        "ids": b.list_(lambda x: {"cpu": x.varint(), "id": x.u64()}),
        "format": b.str_(),
    }


def _source_info(b):
    return {
        "kind": b.str_(),
        "name": b.str_(),
        "status": b.u8(),
        "detail": b.str_(),
    }


def _trace_info_fields(b):
    return {
        "hostname": b.str_(),
        "kernel_release": b.str_(),
        "kernel_version": b.str_(),
        "arch": b.str_(),
        "cpu_model": b.str_(),
        "recorder": b.str_(),
        "recorder_version": b.str_(),
        "command_line": b.list_(lambda x: x.str_()),
        "clock": b.u32(),
        "start_monotonic_ns": b.u64(),
        "start_realtime_ns": b.u64(),
        "page_size": b.u32(),
        "cpus": b.list_records(_cpu_info),
        "perf_events": b.list_records(_perf_event),
        "sources": b.list_records(_source_info),
        "metadata": b.list_(lambda x: {"key": x.str_(), "value": x.str_()}),
    }


def decode_trace_info(b):
    return b.record(_trace_info_fields)


def decode_perf_data(b):
    cpu = b.u32()
    flags = b.u32()
    ring_offset = b.u64()
    data = bytes(b.take(b.remaining(), "data"))
    return {"cpu": cpu, "flags": flags, "ring_offset": ring_offset, "data": data.hex()}


def _energy(b):
    out = {
        "source": b.u8(),
        "domain": b.u8(),
        "index": b.varint(),
        "name": b.str_(),
        "unit_joules": b.f64(),
        "wrap": b.varint(),
    }
    count = b.varint()
    samples = []
    ts = 0
    raw = 0
    for _ in range(count):
        ts = (ts + b.varint()) & U64_MASK
        raw = (raw + b.svarint()) & U64_MASK
        samples.append({"ts_ns": ts, "raw": raw})
    out["count"] = count
    out["samples"] = samples
    return out


def decode_energy(b):
    return b.list_records(_energy)


def _cgroup_event(b):
    return {
        "ts_ns": b.u64(),
        "op": b.u8(),
        "cgroup_id": b.u64(),
        "hierarchy": b.varint(),
        "path": b.str_(),
        "pid": b.varint(),
        "detail": b.str_(),
    }


def decode_cgroup_events(b):
    return b.list_records(_cgroup_event)


def _activation(b):
    return {
        "activation_id": b.str_(),
        "namespace": b.str_(),
        "action": b.str_(),
        "version": b.str_(),
        "source": b.u8(),
        "kind": b.str_(),
        "start_type": b.u8(),
        "start_epoch_ms": b.varint(),
        "end_epoch_ms": b.varint(),
        "start_ns": b.varint(),
        "end_ns": b.varint(),
        "wait_ms": b.opt(),
        "init_ms": b.opt(),
        "duration_ms": b.opt(),
        "status_code": b.opt(),
        "memory_limit_mb": b.opt(),
        "timeout_ms": b.opt(),
        "container_id": b.str_(),
        "path": b.str_(),
        "caused_by": b.str_(),
        "raw": b.str_(),
    }


def decode_activations(b):
    return b.list_records(_activation)


def _container_event(b):
    return {
        "ts_ns": b.u64(),
        "op": b.u8(),
        "source": b.u8(),
        "container_id": b.str_(),
        "activation_id": b.str_(),
        "action": b.str_(),
        "namespace": b.str_(),
        "start_type": b.u8(),
        "cgroup_path": b.str_(),
        "detail": b.str_(),
    }


def decode_container_events(b):
    return b.list_records(_container_event)


def _cpu_stats(b):
    return {
        "cpu": b.varint(),
        "bytes": b.varint(),
        "lost_events": b.varint(),
        "lost_records": b.varint(),
        "throttled": b.varint(),
        "unthrottled": b.varint(),
        "wakeups": b.varint(),
    }


def _source_stats(b):
    return {
        "name": b.str_(),
        "reads": b.varint(),
        "errors": b.varint(),
        "last_error": b.str_(),
    }


def decode_statistics(b):
    return {
        "ts_ns": b.u64(),
        "cpus": b.list_records(_cpu_stats),
        "sources": b.list_records(_source_stats),
    }


def decode_clock_sync(b):
    count = b.varint()
    pairs = []
    for _ in range(count):
        pairs.append(
            {"monotonic_ns": b.u64(), "realtime_ns": b.u64(), "uncertainty_ns": b.u32()}
        )
    return pairs


def decode_perf_index(b):
    count = b.varint()
    return [{"offset": b.u64(), "cpu": b.u32(), "flags": b.u32()} for _ in range(count)]


def decode_end(b, block_offset=None):
    """Decode an end block payload (b spans exactly the payload)."""
    total = b.remaining()
    if total < 16 or total % 8 != 0:
        raise Malformed("end payload length %d is not a multiple of 8 >= 16" % total)
    tail = Buf(b.data, b.end - 16, b.end)
    self_offset = tail.u64()
    magic = bytes(tail.take(8))
    if magic != END_MAGIC:
        raise Malformed("end block magic is %s, not PWSEND\\0\\0" % magic.hex())
    body = Buf(b.data, b.pos, b.end - 16)
    end_ns = body.varint()
    kinds = body.list_records(
        lambda x: {
            "kind": x.varint(),
            "blocks": x.varint(),
            "stored_bytes": x.varint(),
            "raw_bytes": x.varint(),
        }
    )
    index_count = body.varint()
    index = []
    offset = 0
    for _ in range(index_count):
        offset += body.varint()
        index.append({"offset": offset, "kind": body.varint()})
    # What remains of `body` is the zero padding; its value is not checked.
    if block_offset is not None and self_offset != block_offset:
        raise Malformed(
            "end block self_offset %d does not match its position %d"
            % (self_offset, block_offset)
        )
    return {
        "end_monotonic_ns": end_ns,
        "kinds": kinds,
        "index": index,
        "self_offset": self_offset,
    }


def decode_cpu_stat(b):
    ticks_per_s = b.varint()
    irq_time = b.u8()
    steal_time = b.u8()
    nfields = b.varint()
    fields = [b.str_() for _ in range(nfields)]

    def series(r):
        cpu = r.varint()
        count = r.varint()
        samples = []
        ts = 0
        values = [0] * nfields
        for _ in range(count):
            ts = (ts + r.varint()) & U64_MASK
            values = [(v + r.svarint()) & U64_MASK for v in values]
            samples.append({"ts_ns": ts, "values": list(values)})
        return {"cpu": cpu, "count": count, "samples": samples}

    return {
        "ticks_per_s": ticks_per_s,
        "irq_time": irq_time,
        "steal_time": steal_time,
        "fields": fields,
        "cpus": b.list_records(series),
    }


def decode_gpu(b):
    def sample(r):
        return {
            "pid": r.varint(),
            "timestamp_us": r.u64(),
            "sm": r.u8(),
            "mem": r.u8(),
            "enc": r.u8(),
            "dec": r.u8(),
        }

    def process(r):
        return {"pid": r.varint(), "used_memory": r.opt()}

    def read(r):
        return {
            "ts_ns": r.u64(),
            "power_mw": r.opt(),
            "utilization": r.list_records(sample),
            "processes": r.list_records(process),
        }

    def device(r):
        return {
            "device": r.varint(),
            "uuid": r.str_(),
            "name": r.str_(),
            "mig": r.u8(),
            "reads": r.list_records(read),
        }

    return b.list_records(device)


DECODERS = {
    1: decode_trace_info,
    2: decode_perf_data,
    3: decode_energy,
    4: decode_cgroup_events,
    5: decode_activations,
    6: decode_container_events,
    7: decode_statistics,
    8: decode_clock_sync,
    10: decode_cpu_stat,
    11: decode_gpu,
    12: decode_perf_index,
}

# --------------------------------------------------------------------------------------------
# Decompression


def zstd_decompress(stored, raw_len):
    """Decompress exactly one zstd frame to exactly raw_len bytes (bounded output)."""
    dobj = _zstd.ZstdDecompressor().decompressobj()
    out = bytearray()
    chunk = 4096
    view = memoryview(stored)
    pos = 0
    try:
        while pos < len(view) and not dobj.eof:
            out += dobj.decompress(bytes(view[pos : pos + chunk]))
            pos += chunk
            if len(out) > raw_len:
                raise Malformed("zstd frame decompresses to more than raw_len=%d" % raw_len)
    except _zstd.ZstdError as e:
        raise Malformed("zstd error: %s" % e)
    if not dobj.eof:
        raise Malformed("zstd frame is incomplete")
    if dobj.unused_data or pos < len(view):
        raise Malformed("bytes follow the zstd frame in the payload")
    if len(out) != raw_len:
        raise Malformed(
            "zstd frame decompresses to %d bytes, raw_len says %d" % (len(out), raw_len)
        )
    return bytes(out)


# --------------------------------------------------------------------------------------------
# File and block structure


def ceil8(n):
    return (n + 7) & ~7


def parse_file_header(data):
    if len(data) < len(FILE_MAGIC) or data[: len(FILE_MAGIC)] != FILE_MAGIC:
        raise NotATrace("not a pws trace (bad magic)")
    if len(data) < FILE_HEADER_LEN:
        raise Corrupt(0, "truncated file header", detail="%d of 24 bytes" % len(data))
    major, minor, flags, header_len, header_crc = struct.unpack_from("<HHIII", data, 8)
    actual = crc32c(data, 0, 20)
    if actual != header_crc:
        raise Corrupt(
            0,
            "corrupt file header",
            detail="header CRC is %08x, computed %08x" % (header_crc, actual),
        )
    if major != KNOWN_MAJOR:
        raise NotATrace("unsupported trace major version %d (this reader knows 1)" % major)
    unknown_incompat = flags & 0xFFFF0000 & ~KNOWN_FILE_FLAGS
    if unknown_incompat:
        raise NotATrace("trace sets unknown incompatible flags 0x%08x" % unknown_incompat)
    if header_len < FILE_HEADER_LEN or header_len % 8 != 0:
        raise Corrupt(0, "corrupt file header", detail="invalid header_len %d" % header_len)
    return {"major": major, "minor": minor, "flags": flags, "header_len": header_len}


def block_header_at(data, p):
    """Return (kind, flags, stored_len, raw_len, payload_crc) if a sound block header
    (sync and header CRC) is at p, else None.  Requires 24 bytes at p."""
    if data[p : p + 4] != BLOCK_SYNC:
        return None
    kind, flags, stored_len, raw_len, payload_crc, header_crc = struct.unpack_from(
        "<HHIIII", data, p + 4
    )
    if crc32c(data, p, p + 20) != header_crc:
        return None
    return kind, flags, stored_len, raw_len, payload_crc


def lengths_valid(flags, stored_len, raw_len):
    if stored_len > MAX_LEN or raw_len > MAX_LEN:
        return False
    if not (flags & FLAG_ZSTD) and stored_len != raw_len:
        return False
    if flags & FLAG_ZSTD and raw_len > MAX_ZSTD_RATIO * stored_len:
        return False  # no zstd frame expands more than 32768x
    return True


def resync(data, start):
    """Next multiple of 8 at or after start holding a sound block header with valid lengths."""
    n = len(data)
    q = ceil8(start)
    while q + BLOCK_HEADER_LEN <= n:
        idx = data.find(BLOCK_SYNC, q)
        if idx < 0 or idx + BLOCK_HEADER_LEN > n:
            return None
        if idx % 8:
            q = ceil8(idx)
            continue
        h = block_header_at(data, idx)
        if h is not None and lengths_valid(h[1], h[2], h[3]):
            return idx
        q = idx + 8
    return None


def check_trailer(data, header_len):
    """Open a finished trace through its last 16 bytes, as FORMAT.md describes."""
    n = len(data)
    if n < header_len + BLOCK_HEADER_LEN + 16:
        return False
    if data[n - 8 :] != END_MAGIC:
        return False
    self_offset = struct.unpack_from("<Q", data, n - 16)[0]
    if self_offset < header_len or self_offset % 8 or self_offset + BLOCK_HEADER_LEN > n:
        return False
    h = block_header_at(data, self_offset)
    if h is None:
        return False
    kind, flags, stored_len, raw_len, payload_crc = h
    if kind != KIND_END or flags & BLOCK_PAYLOAD_FLAGS_MASK or stored_len != raw_len or stored_len > MAX_LEN:
        return False
    if stored_len % 8 or self_offset + BLOCK_HEADER_LEN + stored_len != n:
        return False
    pstart = self_offset + BLOCK_HEADER_LEN
    if crc32c(data, pstart, n) != payload_crc:
        return False
    try:
        end = decode_end(Buf(data, pstart, n), self_offset)
    except Malformed:
        return False
    for entry in end["index"]:
        off, k = entry["offset"], entry["kind"]
        if off < header_len or off % 8 or off + BLOCK_HEADER_LEN > self_offset:
            return False
        eh = block_header_at(data, off)
        if eh is None or eh[0] != k or not lengths_valid(eh[1], eh[2], eh[3]):
            return False
        if off + BLOCK_HEADER_LEN + ceil8(eh[2]) > self_offset:
            return False
    return True


def decode_block(data, p, kind, flags, stored_len, raw_len):
    """Decode the payload of a good block; returns (payload, note) or raises Malformed."""
    if flags & BLOCK_PAYLOAD_FLAGS_MASK & ~KNOWN_BLOCK_FLAGS:
        return None, "unknown block flags 0x%04x; payload not interpreted" % flags
    if kind not in KIND_NAMES:
        return None, None
    pstart = p + BLOCK_HEADER_LEN
    if flags & FLAG_ZSTD:
        if _zstd is None:
            return None, "payload is zstd-compressed and the zstandard module is not available"
        payload = zstd_decompress(data[pstart : pstart + stored_len], raw_len)
        buf = Buf(payload)
    else:
        buf = Buf(data, pstart, pstart + stored_len)
    if kind == KIND_END:
        return decode_end(buf, p), None
    return DECODERS[kind](buf), None


def read_trace(data, skip_bad):
    header = parse_file_header(data)
    n = len(data)
    blocks = []
    skipped = []
    torn = None
    p = header["header_len"]

    def fail_or_skip(err, next_p):
        if not skip_bad:
            raise err
        reason = err.reason if not err.detail else "%s: %s" % (err.reason, err.detail)
        skipped.append({"offset": err.offset, "bytes": next_p - err.offset, "reason": reason})
        return next_p

    while True:
        if p >= n:
            if p > n:
                # The file ends inside a (lengthened) file header: nothing after the fixed
                # 24-byte header can be used.
                torn = {"offset": FILE_HEADER_LEN, "bytes": n - FILE_HEADER_LEN}
            break
        left = n - p
        # 1. fewer than 24 bytes left: torn
        if left < BLOCK_HEADER_LEN:
            torn = {"offset": p, "bytes": left}
            break
        # 2. sync or header CRC wrong
        h = block_header_at(data, p)
        if h is None:
            if data.count(0, p) == left:
                torn = {"offset": p, "bytes": left}
                break
            q = resync(data, p + 8)
            p = fail_or_skip(Corrupt(p, "corrupt block header"), n if q is None else q)
            continue
        kind, flags, stored_len, raw_len, payload_crc = h
        # 3. impossible lengths
        if not lengths_valid(flags, stored_len, raw_len):
            q = resync(data, p + 8)
            p = fail_or_skip(
                Corrupt(
                    p,
                    "impossible length",
                    kind,
                    "stored_len=%d raw_len=%d flags=0x%04x" % (stored_len, raw_len, flags),
                ),
                n if q is None else q,
            )
            continue
        # 4. runs past the end of the file (payload or padding): torn
        next_p = p + BLOCK_HEADER_LEN + ceil8(stored_len)
        if next_p > n:
            torn = {"offset": p, "bytes": left}
            break
        # 5. payload CRC
        pstart = p + BLOCK_HEADER_LEN
        actual = crc32c(data, pstart, pstart + stored_len)
        if actual != payload_crc:
            p = fail_or_skip(
                Corrupt(
                    p,
                    "bad CRC",
                    kind,
                    "payload CRC is %08x, computed %08x" % (payload_crc, actual),
                ),
                next_p,
            )
            continue
        # 6. good block: decode its payload
        try:
            payload, note = decode_block(data, p, kind, flags, stored_len, raw_len)
        except Malformed as e:
            p = fail_or_skip(Corrupt(p, "bad payload", kind, str(e)), next_p)
            continue
        entry = {
            "offset": p,
            "kind": kind,
            "name": KIND_NAMES.get(kind),
            "compressed": bool(flags & FLAG_ZSTD),
            "stored_len": stored_len,
            "raw_len": raw_len,
            "payload": payload,
        }
        if note is not None:
            entry["note"] = note
        blocks.append(entry)
        p = next_p
        if kind == KIND_END:
            break  # anything after the end block is trailing bytes without meaning

    return {
        "header": header,
        "blocks": blocks,
        "torn_tail": torn,
        "skipped": skipped,
        "end_via_trailer": check_trailer(data, header["header_len"]),
    }


# --------------------------------------------------------------------------------------------
# Command line

USAGE = "usage: pws_read.py TRACE [--skip-bad-blocks]"


def main(argv):
    args = list(argv[1:])
    skip_bad = False
    paths = []
    for a in args:
        if a == "--skip-bad-blocks":
            skip_bad = True
        elif a in ("-h", "--help"):
            sys.stdout.write(USAGE + "\n")
            return 0
        elif a.startswith("--") and a != "--":
            sys.stderr.write("pws_read: unknown option %s\n%s\n" % (a, USAGE))
            return 2
        else:
            paths.append(a)
    if len(paths) != 1:
        sys.stderr.write(USAGE + "\n")
        return 2
    path = paths[0]
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        sys.stderr.write("pws_read: cannot read %s: %s\n" % (path, e.strerror or e))
        return 2
    try:
        result = read_trace(data, skip_bad)
    except NotATrace as e:
        sys.stderr.write("pws_read: %s: %s\n" % (path, e))
        return 2
    except Corrupt as e:
        sys.stderr.write("pws_read: %s: %s\n" % (path, e.message()))
        return 1
    try:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    except UnicodeEncodeError:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv)
    except BrokenPipeError:
        code = 0
    except MemoryError:
        sys.stderr.write("pws_read: out of memory\n")
        code = 1
    except Exception as e:  # never show a traceback, whatever the input bytes
        sys.stderr.write("pws_read: internal error: %s: %s\n" % (type(e).__name__, e))
        code = 1
    try:
        sys.stdout.flush()
    except Exception:
        pass
    sys.exit(code)
