"""Mutations of one seed frame, as a list of JSON-able operations.

`generate` draws the operations from a `random.Random` (so `--seed N` and the case number fix
them) and records each one with its concrete bytes; `apply` replays such a list on a freshly
built frame. Because a seed's layout does not depend on the live ids the prefix got (session,
tree, file ids), the same list gives the same mutation on every run: a finding's .json is its
reproducer.

Operations:
  set      {"at", "hex"}            overwrite bytes (field-aware values: 0, 1, max, off by one,
                                    the end of the frame and beyond, another field's value)
  add      {"at", "size", "delta"}  an id field moved by delta (relative to the live id)
  flip     {"at", "bit"}            one bit
  replace  {"at", "n", "hex"}       n bytes replaced by others (names: "..", ":", long, odd)
  trunc    {"len"}                  cut the frame
  extend   {"hex"} / {"n", "fill"}  append bytes
  insert   {"at", "hex"}, delete {"at", "n"}
  splice   {"seed", "at", "from"}   this frame up to `at`, another seed's from `from`
  chain    {"seed", "related"}      another seed's first frame appended as a compound member
  nblen    {"value"}                the Direct TCP length lies (transport)
  nbtype   {"value"}                a non-zero first byte of the Direct TCP header (transport)
  twice    {}                       the mutated frame sent twice, MessageIds moved on (transport)
"""

from __future__ import annotations

import random
import struct
from typing import Callable

from . import smb2_builders as b

KIND_WEIGHTS = {b.OFFSET: 6, b.LENGTH: 6, b.COUNT: 5, b.SIZE: 1, b.FLAGS: 3, b.ENUM: 3,
                b.ID: 1, b.VALUE: 2, b.DATA: 1}
OP_WEIGHTS = {"field": 45, "flip": 12, "byte": 6, "replace": 5, "trunc": 7, "extend": 5,
              "insert": 3, "delete": 3, "splice": 4, "chain": 4, "nblen": 3, "twice": 3}
# Path and name spellings a CREATE, TREE_CONNECT, rename or EA name might not expect.
NAMES = ["..", "..\\..\\etc\\passwd", "\\", "", ":", "f.bin::$DATA", "f.bin:s:$DATA:x", "*",
         "?", "d\\..\\..\\x", "d\\\\sub", "CON", "a" * 300, "d\\" * 64 + "x", "\x00x", "ln\\x",
         ".\\f.bin", "f.bin\\", "::$INDEX_ALLOCATION", "\u00e9\U0001f600", "user.DOSATTRIB",
         "\\\\127.0.0.1\\IPC$", "\\\\127.0.0.1\\fuzz\\x", "\\\\127.0.0.1\\" + "s" * 90,
         "x\udc00y", "\ud800", "d\\\udfff.txt", "f.bin:\ud83d"]  # lone UTF-16 surrogates
ODD_BYTES = [b"\x00", b"\x00\xd8", b"\x00\xdc", b"\xff\xfe", b"\\\x00", b":\x00"]


def _field_value(rng: random.Random, f: b.Field, cur: int, frame_len: int,
                 others: list[int]) -> int:
    top = (1 << (8 * f.size)) - 1
    choices = [0, 1, top, top - 1, top >> 1, (top >> 1) + 1, cur + 1, cur - 1]
    if f.kind in (b.OFFSET, b.LENGTH):
        choices += [frame_len, frame_len + 1, frame_len - 1, frame_len - f.pos,
                    frame_len - f.pos + 1, b.HEADER_SIZE, b.HEADER_SIZE - 1, cur + 8, cur - 8,
                    cur * 2, 0x8000, 0xFFFF, 0x10000, frame_len + 0x10000, 0x7FFFFFFF]
        choices += others
    elif f.kind == b.COUNT:
        choices += [cur * 2, cur + 2, 0xFF, 0x100, 0x1000, 0xFFFF]
    elif f.kind == b.FLAGS:
        choices += [cur ^ (1 << rng.randrange(8 * f.size)), cur | rng.getrandbits(8 * f.size)]
    elif f.kind in (b.ENUM, b.SIZE):
        choices += [rng.randrange(0, 80), cur ^ 1, cur + 2]
    else:
        choices += [rng.getrandbits(8 * f.size)]
    return rng.choice(choices) & top


def _pick_field(rng: random.Random, fields: list[b.Field], size: int) -> b.Field | None:
    live = [f for f in fields if f.pos + f.size <= size]
    if not live:
        return None
    # Header fields a quarter as often: most of them only ever reach connection.py's checks.
    weights = [KIND_WEIGHTS.get(f.kind, 1) * (0.25 if "hdr." in f.name else 1) for f in live]
    return rng.choices(live, weights)[0]


def generate(rng: random.Random, msg: b.Msg, build_other: Callable[[str], b.Msg],
             seed_names: list[str], frame_limit: int) -> list[dict]:
    """1-4 operations (sometimes none: the seed as it is), applied as they are drawn."""
    if rng.random() < 0.03:
        return []
    ops: list[dict] = []
    data = bytearray(msg.data)
    headers = list(msg.headers)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
        op = _draw(rng, msg, data, build_other, seed_names, frame_limit)
        if op is None:
            continue
        ops.append(op)
        data = _apply_one(op, data, headers, build_other, {})
    return ops


def _position(rng: random.Random, n: int) -> int:
    """A byte position, mostly in the body: a header hit mostly ends at connection.py."""
    if n > b.HEADER_SIZE and rng.random() < 0.85:
        return rng.randrange(b.HEADER_SIZE, n)
    return rng.randrange(n)


def _draw(rng: random.Random, msg: b.Msg, data: bytearray, build_other, seed_names,
          frame_limit: int) -> dict | None:
    kind = rng.choices(list(OP_WEIGHTS), list(OP_WEIGHTS.values()))[0]
    n = len(data)
    if kind == "field":
        f = _pick_field(rng, msg.fields, n)
        if f is None:
            return None
        cur = int.from_bytes(data[f.pos:f.pos + f.size], "little")
        if f.kind == b.DATA and f.size > 8:
            blob = rng.choice([bytes(f.size), b"\xff" * f.size, rng.randbytes(f.size)])
            return {"op": "set", "at": f.pos, "hex": blob.hex(), "field": f.name}
        others = [int.from_bytes(data[g.pos:g.pos + g.size], "little")
                  for g in msg.fields if g.kind in (b.OFFSET, b.LENGTH) and g.pos + g.size <= n]
        value = _field_value(rng, f, cur, n, rng.sample(others, min(3, len(others))))
        top = (1 << (8 * f.size)) - 1
        if f.kind == b.ID and value not in (0, top):
            # relative to the live id (session, tree, file ids differ from run to run): a
            # replay means "the next open" again, not the number this run had
            return {"op": "add", "at": f.pos, "size": f.size, "delta": (value - cur) & top,
                    "field": f.name}
        return {"op": "set", "at": f.pos, "hex": value.to_bytes(f.size, "little").hex(),
                "field": f.name}
    if kind == "flip" and n:
        return {"op": "flip", "at": _position(rng, n), "bit": rng.randrange(8)}
    if kind == "byte" and n:
        value = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x01, rng.randrange(256)])
        return {"op": "set", "at": _position(rng, n), "hex": f"{value:02x}"}
    if kind == "replace":
        names = [f for f in msg.fields if f.kind == b.DATA and f.pos + f.size <= n
                 and not f.name.endswith(("Signature", "MIC"))]
        if not names:
            return None
        f = rng.choice(names)
        new = rng.choice([rng.choice(NAMES).encode("utf-16-le", "surrogatepass"),
                          rng.choice(ODD_BYTES), rng.choice(NAMES).encode("utf-8", "replace")])
        return {"op": "replace", "at": f.pos, "n": f.size, "hex": new.hex(), "field": f.name,
                "fix_length": True}
    if kind == "trunc" and n > 1:
        cuts = [f.pos for f in msg.fields if 0 < f.pos < n] + [f.pos + f.size for f in msg.fields
                                                               if f.pos + f.size < n]
        if n > b.HEADER_SIZE and rng.random() < 0.85:
            cuts = [c for c in cuts if c > b.HEADER_SIZE] or [rng.randrange(b.HEADER_SIZE, n)]
        cut = rng.choice(cuts) if cuts and rng.random() < 0.7 else _position(rng, n)
        return {"op": "trunc", "len": cut}
    if kind == "extend":
        size = rng.choice([1, 2, 7, 8, 16, 64, 4096, 66000])
        if size <= 64:
            return {"op": "extend", "hex": rng.randbytes(size).hex()}
        return {"op": "extend", "n": min(size, frame_limit), "fill": rng.choice([0, 0x41, 0xFF])}
    if kind == "insert" and n:
        return {"op": "insert", "at": _position(rng, n),
                "hex": rng.randbytes(rng.choice([1, 2, 4, 8, 64])).hex()}
    if kind == "delete" and n > 8:
        return {"op": "delete", "at": _position(rng, n), "n": rng.choice([1, 2, 4, 8, 16])}
    if kind in ("splice", "chain"):
        other_name = rng.choice(seed_names)
        other = build_other(other_name)
        if kind == "chain":
            return {"op": "chain", "seed": other_name, "related": rng.random() < 0.5}
        if not n or not len(other):
            return None
        return {"op": "splice", "seed": other_name, "at": rng.randrange(n),
                "from": rng.randrange(len(other))}
    if kind == "nblen":
        value = rng.choice([n - 1, n + 1, n + 64, 0, 1, 4, 63, 64, n // 2, frame_limit,
                            frame_limit + 1, 0xFFFFFF])
        if rng.random() < 0.25:
            return {"op": "nbtype", "value": rng.choice([0x81, 0x85, 0x01, 0xFF])}
        return {"op": "nblen", "value": max(value, 0)}
    if kind == "twice":
        return {"op": "twice"}
    return None


def _last_header(data: bytearray, headers: list[int]) -> int | None:
    live = [h for h in headers if h + b.HEADER_SIZE <= len(data)]
    return max(live) if live else None


def _max_msg_id(data: bytearray, headers: list[int]) -> int:
    ids = [struct.unpack_from("<Q", data, h + 24)[0] for h in headers
           if h + b.HEADER_SIZE <= len(data)]
    return max(ids) if ids else 0


def _apply_one(op: dict, data: bytearray, headers: list[int], build_other, transport: dict
               ) -> bytearray:
    kind = op["op"]
    if kind == "set":
        new = bytes.fromhex(op["hex"])
        at = op["at"]
        if at < len(data):
            data[at:at + len(new)] = new[:max(0, len(data) - at)]
    elif kind == "add":
        at, size = op["at"], op["size"]
        if at + size <= len(data):
            cur = int.from_bytes(data[at:at + size], "little")
            data[at:at + size] = ((cur + op["delta"]) & ((1 << (8 * size)) - 1)).to_bytes(
                size, "little")
    elif kind == "flip":
        if op["at"] < len(data):
            data[op["at"]] ^= 1 << op["bit"]
    elif kind == "replace":
        at, old_n, new = op["at"], op["n"], bytes.fromhex(op["hex"])
        if at <= len(data):
            data[at:at + old_n] = new
            if op.get("fix_length"):
                _fix_length(data, at, old_n, len(new))
    elif kind == "trunc":
        del data[op["len"]:]
    elif kind == "extend":
        data += bytes.fromhex(op["hex"]) if "hex" in op else bytes([op["fill"]]) * op["n"]
    elif kind == "insert":
        data[op["at"]:op["at"]] = bytes.fromhex(op["hex"])
    elif kind == "delete":
        del data[op["at"]:op["at"] + op["n"]]
    elif kind == "splice":
        other = build_other(op["seed"])
        data = bytearray(data[:op["at"]] + other.data[op["from"]:])
    elif kind == "chain":
        other = build_other(op["seed"])
        last = _last_header(data, headers)
        if last is None or not other.headers:
            data += other.data
            return data
        data += bytes(-len(data) % 8)
        struct.pack_into("<I", data, last + 20, len(data) - last)
        base, first_new = len(data), _max_msg_id(data, headers) + 1
        part = bytearray(other.data)
        for i, h in enumerate(other.headers):
            struct.pack_into("<Q", part, h + 24, (first_new + i) & 0xFFFFFFFFFFFFFFFF)
            if op["related"]:
                flags = struct.unpack_from("<I", part, h + 16)[0]
                struct.pack_into("<I", part, h + 16, flags | b.SMB2_FLAGS_RELATED_OPERATIONS)
        headers += [base + h for h in other.headers]
        data += part
    elif kind in ("nblen", "nbtype"):
        transport[kind] = op["value"]
    elif kind == "twice":
        transport["twice"] = True
    return data


def _fix_length(data: bytearray, at: int, old_n: int, new_n: int) -> None:
    """After a name was replaced, the nearest u16 before it that held the old length (the
    NameLength of `NameOffset, NameLength, ...` layouts) gets the new one, so the new name is
    read rather than refused for its length; nothing changes when no such u16 is found."""
    for back in range(2, 40, 2):
        pos = at - back
        if pos < 0:
            break
        if pos + 2 <= len(data) and struct.unpack_from("<H", data, pos)[0] == old_n:
            struct.pack_into("<H", data, pos, new_n & 0xFFFF)
            return


def apply(ops: list[dict], msg: b.Msg, build_other: Callable[[str], b.Msg]
          ) -> tuple[bytes, dict]:
    """The mutated frame's bytes and its transport options (nblen, nbtype, twice)."""
    data = bytearray(msg.data)
    headers = list(msg.headers)
    transport: dict = {}
    for op in ops:
        data = _apply_one(op, data, headers, build_other, transport)
    transport["headers"] = headers
    return bytes(data), transport


def bump_message_ids(data: bytes, headers: list[int], by: int) -> bytes:
    """A copy of a frame with every (still present) header's MessageId moved on by `by`."""
    out = bytearray(data)
    for h in headers:
        if h + b.HEADER_SIZE <= len(out) and out[h:h + 4] == b"\xfeSMB":
            mid = struct.unpack_from("<Q", out, h + 24)[0]
            struct.pack_into("<Q", out, h + 24, (mid + by) & 0xFFFFFFFFFFFFFFFF)
    return bytes(out)


def wire(frames: list[bytes], target: int, mutated: bytes, transport: dict,
         wrap: Callable[[bytes], bytes] | None = None) -> bytes:
    """The bytes sent after the prefix: every frame with its Direct TCP header, the target one
    mutated (and its header lying, or sent twice, as the transport options say); `wrap`
    (encryption) applied to each frame's message first."""
    wrap = wrap or (lambda message: message)
    out = bytearray()
    for i, frame in enumerate(frames):
        if i != target:
            sealed = wrap(frame)
            out += struct.pack(">I", len(sealed)) + sealed
            continue
        sealed = wrap(mutated)
        length = transport.get("nblen", len(sealed))
        head = struct.pack(">I", length & 0xFFFFFF)
        if "nbtype" in transport:
            head = bytes([transport["nbtype"] & 0xFF]) + head[1:]
        out += head + sealed
        if transport.get("twice"):
            n = max(1, len(transport.get("headers", ())))
            again = wrap(bump_message_ids(mutated, transport.get("headers", []), n))
            out += struct.pack(">I", len(again)) + again
    return bytes(out)
