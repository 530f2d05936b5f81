"""blob/blobmsg and ubus message encoding checked against bytes captured from the real ubusd
(tests/vectors/ubus)."""

import json
from pathlib import Path

import pytest

from ksmbd_embedded.ubus import blob
from ksmbd_embedded.ubus import message as m

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "ubus"
SESSIONS = ("cli-session", "notify-session")


def load(session):
    """[(file name, bytes)] of one capture, in order."""
    out = []
    for path in sorted((VECTORS / session).glob("*.hex")):
        text = "".join(line for line in path.read_text().splitlines()
                       if not line.startswith("#"))
        out.append((path.name, bytes.fromhex("".join(text.split()))))
    return out


def index(session):
    return {e["file"]: e for e in json.loads((VECTORS / session / "index.json").read_text())
            ["messages"]}


ALL = [(s, name, raw) for s in SESSIONS for name, raw in load(s)]


def test_vectors_are_present():
    assert len(load("cli-session")) == 97 and len(load("notify-session")) == 26


@pytest.mark.parametrize("session,name,raw", ALL, ids=[f"{s}/{n}" for s, n, _ in ALL])
def test_every_captured_message_round_trips(session, name, raw):
    assert m.message_length(raw[:12]) == len(raw)
    msg = m.Message.decode(raw)
    assert msg.encode() == raw
    info = index(session)[name]["decoded"]
    assert msg.type == info["type_num"] and msg.seq == info["seq"]
    assert msg.peer == int(info["peer"], 16)
    assert [aid for aid, _ in msg.attrs] == [a["id"] for a in info["attrs"]]
    for (aid, value), a in zip(msg.attrs, info["attrs"]):
        assert not isinstance(value, m.RawAttr), (name, aid)
        if aid in (m.UBUS_ATTR_DATA, m.UBUS_ATTR_SIGNATURE, m.UBUS_ATTR_METHOD,
                   m.UBUS_ATTR_OBJPATH, m.UBUS_ATTR_USER, m.UBUS_ATTR_GROUP):
            assert value == a["value"], (name, aid)
        elif aid in (m.UBUS_ATTR_OBJID, m.UBUS_ATTR_OBJTYPE, m.UBUS_ATTR_TARGET):
            assert value == int(a["value"], 16)
        elif aid == m.UBUS_ATTR_STATUS:
            assert value == int(str(a["value"]).split()[0])


def data_attr_bytes(raw):
    for aid, ext, payload in blob.iter_attrs(raw[12:]):
        if aid == m.UBUS_ATTR_DATA:
            return payload
    raise AssertionError("no DATA")


def test_json_values_encode_like_the_ubus_cli():
    """Step 10: the CLI's JSON -> blobmsg mapping for every value type (capture 062)."""
    raw = dict(load("cli-session"))["062_conn10_c2s_INVOKE.hex"]
    as_json = index("cli-session")["062_conn10_c2s_INVOKE.hex"]["decoded"]["attrs"][2]["value"]
    assert blob.encode_members(json.loads(json.dumps(as_json))) == data_attr_bytes(raw)
    decoded = blob.decode_members(data_attr_bytes(raw))
    assert decoded["flag"] is True and decoded["off"] is False and decoded["nothing"] is None
    assert type(decoded["big"]) is blob.Int64 and decoded["neg"] == -7
    assert decoded["pi"] == 3.25 and decoded["list"] == [1, "two", {"x": "y"}]


def test_typed_integers_keep_their_wire_type():
    value = {"a": blob.Int64(5), "b": blob.Int16(-2), "c": blob.Int8(9), "d": blob.Int32(1)}
    enc = blob.encode_members(value)
    assert enc[0] == 0x84 and blob.decode_members(enc) == value
    assert [type(v) for v in blob.decode_members(enc).values()] == \
        [blob.Int64, blob.Int16, blob.Int8, blob.Int32]


def test_signature_of_the_example_server():
    """ADD_OBJECT 005: OBJPATH and one TABLE per method of INT32 argument types."""
    raw = dict(load("cli-session"))["005_conn2_c2s_ADD_OBJECT.hex"]
    sig = {"hello": {"id": 5, "msg": 3}, "watch": {"id": 5, "counter": 5},
           "count": {"to": 5, "string": 3}}
    msg = m.Message(m.UBUS_MSG_ADD_OBJECT, 1, 0,
                    [(m.UBUS_ATTR_OBJPATH, "test"), (m.UBUS_ATTR_SIGNATURE, sig)])
    assert msg.encode() == raw


def test_name_header_and_padding():
    assert blob.encode_value("to", 3) == bytes.fromhex("85000010 00027 46f00000000 00000003"
                                                       .replace(" ", ""))
    assert blob.encode_value("", None) == bytes.fromhex("80000008 00000000")
    assert blob.attr(4, b"count\0") == bytes.fromhex("0400000a636f756e74000000")


@pytest.mark.parametrize("bad", [
    b"\x83\x00\x00\x03",  # shorter than its own header
    b"\x83\x00\x00\x10\x00\x01",  # longer than the buffer
    b"\x03\x00\x00\x0c\x00\x00\x00\x00\x41\x00\x00\x00",  # not extended inside a table
    b"\x83\x00\x00\x0c\x00\x01x\x00A\x00B\x00",  # string with an embedded NUL
    b"\x83\x00\x00\x0a\x00\x01x\x00AB",  # string without its NUL
    b"\x85\x00\x00\x0a\x00\x01x\x00\x00\x01",  # INT32 of 2 bytes
    b"\x89\x00\x00\x08\x00\x01x\x00",  # type 9 does not exist
    b"\x85\x00\x00\x0c\x00\x00\x00\x00\x00\x00\x00\x01",  # unnamed table member
    b"\x85\x00\x00\x0c\x00\x09x\x00\x00\x00\x00\x01",  # name longer than the attribute
])
def test_malformed_blobmsg_is_refused(bad):
    with pytest.raises(blob.BlobError):
        blob.decode_members(bad)


def test_values_without_an_encoding():
    with pytest.raises(blob.BlobError):
        blob.encode_members({"x": 2**63})
    with pytest.raises(blob.BlobError):
        blob.encode_members({"x": b"bytes"})
    with pytest.raises(blob.BlobError):
        blob.encode_members({"": 1})


@pytest.mark.parametrize("bad", [
    b"\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00",  # 11 bytes
    b"\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x08",  # blob says 8, there are 4
    b"\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x03",  # blob length below 4
    b"\x00\x00\x00\x00\x00\x00\x00\x01\x85\x00\x00\x04",  # blob with an id
])
def test_malformed_messages_are_refused(bad):
    with pytest.raises(m.MessageError):
        m.Message.decode(bad)


def test_message_length_limits():
    with pytest.raises(m.MessageError):
        m.message_length(b"\x00\x05\x00\x01\x00\x00\x00\x00\x00\x10\x00\x04")  # > 1 MiB
    assert m.message_length(b"\x00\x05\x00\x01\x00\x00\x00\x00\x00\x10\x00\x00") == 8 + 2**20


def test_invalid_top_level_attribute_counts_as_absent():
    """libubus ignores an attribute failing its type check; a later valid one wins."""
    body = blob.attr(m.UBUS_ATTR_OBJID, b"\x00\x01") + blob.attr(m.UBUS_ATTR_STATUS, b"\0\0\0\2")
    raw = m.HEADER.pack(0, m.UBUS_MSG_STATUS, 1, 0) + blob.attr(0, body)
    msg = m.Message.decode(raw)
    assert msg.get(m.UBUS_ATTR_OBJID) is None and msg.get(m.UBUS_ATTR_STATUS) == 2
    assert msg.encode() == raw
