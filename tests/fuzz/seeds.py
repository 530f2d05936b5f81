"""The fuzzer's seeds: valid requests for every SMB2 command, compounds and the SMB1 upgrade.

A seed names the prefix it needs (`level`: the requests sent, unmutated, before it) and builds
its frames from the `Ctx` that prefix established (session, tree and file ids, the NTLM
challenge, a resume key). One frame of a seed is mutated; the others are sent as built.

Levels (each includes the ones before it on its line):
  conn                      nothing: the first message of a connection
  smb1                      an SMB1 NEGOTIATE upgraded to SMB 2.??? (MS-SMB2 3.3.5.3.1)
  neg -> auth -> session    NEGOTIATE; SESSION_SETUP leg 1 (challenge); leg 2 (logged on)
  session -> tree           TREE_CONNECT to the fuzz share
  tree -> file -> file2     CREATE f.bin (+ a resume key); a second open holding a lock
  tree -> dir               CREATE the directory d
  session -> pipe -> bound  TREE_CONNECT IPC$, CREATE srvsvc; a DCE/RPC bind on it

After the seed's frames an `epilogue` (unmutated) reads back the state the fuzzed request
left: the file's EAs, security descriptor and streams, a directory listing, the pipe.

`expect`: "ok" when every response to the unmutated seed has a non-error status (checked by
test_fuzz_smoke.py::test_every_seed_is_valid), "error" when the seed asks for an error on
purpose, "any" when the answer depends on state (e.g. what earlier cases left on disk).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from . import smb2_builders as b
from .client import Ctx

LEVEL_PREFIX = {
    "conn": (), "smb1": ("smb1",), "neg": ("neg",), "auth": ("neg", "auth"),
    "session": ("neg", "auth", "session"), "tree": ("neg", "auth", "session", "tree"),
    "file": ("neg", "auth", "session", "tree", "file"),
    "file2": ("neg", "auth", "session", "tree", "file", "file2"),
    "dir": ("neg", "auth", "session", "tree", "dir"),
    "pipe": ("neg", "auth", "session", "pipe"),
    "bound": ("neg", "auth", "session", "pipe", "bound"),
}


@dataclass(frozen=True)
class Seed:
    name: str
    level: str
    build: Callable[[Ctx], list[b.Msg]]
    expect: str = "ok"
    dialect: int = b.SMB3_11


SEEDS: list[Seed] = []


def seed(name: str, level: str, expect: str = "ok", dialect: int = b.SMB3_11):
    def register(fn):
        SEEDS.append(Seed(name, level, fn, expect, dialect))
        return fn
    return register


def one(command: int, body: b.Buf, ctx: Ctx, k: int = 0, **hdr) -> list[b.Msg]:
    return [b.request(command, body, **ctx.hdr(k, **hdr))]


def chain(ctx: Ctx, parts: list[tuple[int, b.Buf]], related: bool = True, k: int = 0,
          **hdr) -> list[b.Msg]:
    """A compound of `parts` (MessageIds from the k-th after the prefix); with `related`,
    every request after the first is related."""
    msgs = [b.request(cmd, body, **ctx.hdr(k + i, **hdr)) for i, (cmd, body) in enumerate(parts)]
    return [b.compound(msgs, [related and i > 0 for i in range(len(msgs))])]


ANY = b.FILE_ID_ANY


# -- conn / smb1: NEGOTIATE ------------------------------------------------------------------------

@seed("negotiate_311_contexts", "conn")
def _(ctx):
    return one(b.NEGOTIATE, b.negotiate_body(b.ALL_DIALECTS, contexts=b.all_negotiate_contexts()),
               ctx)


@seed("negotiate_2x", "conn")
def _(ctx):
    return one(b.NEGOTIATE, b.negotiate_body((b.SMB2_02, b.SMB2_10)), ctx, credit_charge=0)


@seed("negotiate_30x", "conn")
def _(ctx):
    return one(b.NEGOTIATE, b.negotiate_body((b.SMB2_02, b.SMB2_10, b.SMB3_00, b.SMB3_02)), ctx)


@seed("smb1_negotiate_wildcard", "conn")
def _(ctx):
    return [b.smb1_negotiate()]


@seed("smb1_negotiate_2002", "conn")
def _(ctx):
    return [b.smb1_negotiate((b"NT LM 0.12", b"SMB 2.002"))]


@seed("negotiate_after_smb1", "smb1")
def _(ctx):
    return one(b.NEGOTIATE, b.negotiate_body(b.ALL_DIALECTS, contexts=b.all_negotiate_contexts()),
               ctx)


# -- neg / auth / session: SESSION_SETUP, LOGOFF, ECHO, CANCEL, TREE_CONNECT --------------------

@seed("session_setup_spnego_negotiate", "neg")
def _(ctx):
    return one(b.SESSION_SETUP, b.session_setup_body(b.spnego_init(b.ntlm_negotiate())), ctx)


@seed("session_setup_raw_ntlm_negotiate", "neg")
def _(ctx):
    return one(b.SESSION_SETUP, b.session_setup_body(b.ntlm_negotiate()), ctx)


@seed("echo_before_logon", "neg")
def _(ctx):
    return one(b.ECHO, b.four_byte_body(), ctx)


@seed("session_setup_ntlmv2_authenticate", "auth")
def _(ctx):
    auth = b.ntlm_authenticate(ctx.challenge, ctx.negotiate_token, user=ctx.user,
                               domain=ctx.domain, nt_hash=ctx.nt_hash)
    return one(b.SESSION_SETUP, b.session_setup_body(b.spnego_resp(auth)), ctx)


@seed("session_setup_anonymous_authenticate", "auth")
def _(ctx):
    auth = b.ntlm_authenticate(ctx.challenge, ctx.negotiate_token, user="", domain="",
                               nt_hash=None)
    return one(b.SESSION_SETUP, b.session_setup_body(b.spnego_resp(auth)), ctx)


@seed("session_setup_unknown_user_guest", "auth")
def _(ctx):
    auth = b.ntlm_authenticate(ctx.challenge, ctx.negotiate_token, user="nobody-fuzz",
                               domain=ctx.domain, nt_hash=bytes(range(16)), with_mic=False)
    return one(b.SESSION_SETUP, b.session_setup_body(b.spnego_resp(auth)), ctx)


@seed("session_setup_reauth_negotiate", "session")
def _(ctx):
    return one(b.SESSION_SETUP, b.session_setup_body(b.spnego_init(b.ntlm_negotiate())), ctx)


@seed("logoff", "session")
def _(ctx):
    return one(b.LOGOFF, b.four_byte_body(), ctx)


@seed("echo", "session")
def _(ctx):
    return one(b.ECHO, b.four_byte_body(), ctx)


@seed("cancel_nothing_pending", "session", expect="any")
def _(ctx):
    return one(b.CANCEL, b.four_byte_body(), ctx)


@seed("tree_connect_share", "session")
def _(ctx):
    return one(b.TREE_CONNECT, b.tree_connect_body(f"\\\\127.0.0.1\\{ctx.share}"), ctx,
               tree_id=0)


@seed("tree_connect_ipc", "session")
def _(ctx):
    return one(b.TREE_CONNECT, b.tree_connect_body("\\\\127.0.0.1\\IPC$"), ctx, tree_id=0)


@seed("compound_tree_connect_create_close", "session")
def _(ctx):
    return chain(ctx, [(b.TREE_CONNECT, b.tree_connect_body(f"\\\\127.0.0.1\\{ctx.share}")),
                       (b.CREATE, b.create_body("f.bin", desired_access=b.GENERIC_READ)),
                       (b.CLOSE, b.close_body(ANY))], tree_id=0)


@seed("compound_unrelated_echo_echo_logoff", "session")
def _(ctx):
    return chain(ctx, [(b.ECHO, b.four_byte_body()), (b.ECHO, b.four_byte_body()),
                       (b.LOGOFF, b.four_byte_body())], related=False)


# -- tree: CREATE with contexts, TREE_DISCONNECT, compounds --------------------------------------

def _all_create_contexts() -> list[b.Buf]:
    eas = b.full_ea_list([(b"FUZZEA", b"value-1", 0), (b"SECOND", b"\x00\x01\x02", 0)])
    return [b.create_context(b"ExtA", eas),
            b.create_context(b"SecD", b.security_descriptor()),
            b.create_context(b"MxAc", b""),
            b.create_context(b"QFid", b""),
            b.create_context(b"AlSi", struct.pack("<Q", 8192)),
            b.create_context(b"DHnQ", bytes(16)),
            b.create_context(b"RqLs", b.lease_request())]


@seed("create_with_contexts", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("c-ctx.txt", disposition=b.FILE_OVERWRITE_IF,
                                       contexts=_all_create_contexts()), ctx)


@seed("create_mxac_qfid_twrp", "tree", expect="error")
def _(ctx):
    return one(b.CREATE, b.create_body("f.bin", contexts=[
        b.create_context(b"MxAc", struct.pack("<Q", 0)), b.create_context(b"QFid", b""),
        b.create_context(b"TWrp", struct.pack("<Q", 132000000000000000))]), ctx)


@seed("create_directory", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("cdir", options=b.FILE_DIRECTORY_FILE,
                                       file_attributes=b.FILE_ATTRIBUTE_DIRECTORY), ctx)


@seed("create_stream", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("f.bin:fz:$DATA"), ctx)


@seed("create_delete_on_close", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("doc.tmp", disposition=b.FILE_OVERWRITE_IF,
                                       options=b.FILE_DELETE_ON_CLOSE), ctx)


@seed("create_open_reparse_point", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("ln", desired_access=b.FILE_READ_ATTRIBUTES,
                                       disposition=b.FILE_OPEN,
                                       options=b.FILE_OPEN_REPARSE_POINT), ctx)


@seed("create_by_file_id", "tree", expect="any")
def _(ctx):
    return one(b.CREATE, b.create_body("", raw_name=struct.pack("<Q", ctx.file_ino),
                                       desired_access=b.GENERIC_READ, disposition=b.FILE_OPEN,
                                       options=b.FILE_OPEN_BY_FILE_ID), ctx)


@seed("create_in_subdirectory", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("d\\sub\\c.txt", desired_access=b.GENERIC_READ,
                                       disposition=b.FILE_OPEN), ctx)


@seed("create_share_root", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("", desired_access=b.GENERIC_READ, disposition=b.FILE_OPEN,
                                       options=b.FILE_DIRECTORY_FILE), ctx)


@seed("tree_disconnect", "tree")
def _(ctx):
    return one(b.TREE_DISCONNECT, b.four_byte_body(), ctx)


@seed("compound_create_write_read_close", "tree")
def _(ctx):
    return chain(ctx, [(b.CREATE, b.create_body("cw.txt", disposition=b.FILE_OVERWRITE_IF)),
                       (b.WRITE, b.write_body(ANY, b"compound data " * 8)),
                       (b.READ, b.read_body(ANY, 64)), (b.CLOSE, b.close_body(ANY))])


@seed("compound_create_query_info_close", "tree")
def _(ctx):
    return chain(ctx, [(b.CREATE, b.create_body("f.bin", desired_access=b.GENERIC_READ)),
                       (b.QUERY_INFO, b.query_info_body(ANY, b.SMB2_0_INFO_FILE, 18)),
                       (b.CLOSE, b.close_body(ANY))])


@seed("compound_create_set_query_close", "tree")
def _(ctx):
    return chain(ctx, [(b.CREATE, b.create_body("cs.txt")),
                       (b.SET_INFO, b.set_info_body(ANY, b.SMB2_0_INFO_FILE, 4,
                                                    b.basic_information(0x20))),
                       (b.QUERY_INFO, b.query_info_body(ANY, b.SMB2_0_INFO_FILE, 4)),
                       (b.CLOSE, b.close_body(ANY))])


@seed("compound_create_query_directory_close", "tree")
def _(ctx):
    return chain(ctx, [(b.CREATE, b.create_body("d", desired_access=b.GENERIC_READ,
                                                disposition=b.FILE_OPEN,
                                                options=b.FILE_DIRECTORY_FILE)),
                       (b.QUERY_DIRECTORY, b.query_directory_body(ANY)),
                       (b.CLOSE, b.close_body(ANY))])


@seed("compound_create_reparse_ioctl_close", "tree")
def _(ctx):
    return chain(ctx, [(b.CREATE, b.create_body("ln", desired_access=b.FILE_READ_ATTRIBUTES,
                                                disposition=b.FILE_OPEN,
                                                options=b.FILE_OPEN_REPARSE_POINT)),
                       (b.IOCTL, b.ioctl_body(ANY, b.FSCTL_GET_REPARSE_POINT)),
                       (b.CLOSE, b.close_body(ANY))])


@seed("compound_create_set_ea_query_ea_close", "tree")
def _(ctx):
    eas = b.full_ea_list([(b"COMPOUNDEA", b"v" * 20, 0)])
    return chain(ctx, [(b.CREATE, b.create_body("f.bin")),
                       (b.SET_INFO, b.set_info_body(ANY, b.SMB2_0_INFO_FILE, 15, eas)),
                       (b.QUERY_INFO, b.query_info_body(
                           ANY, b.SMB2_0_INFO_FILE, 15, data=b.get_ea_list([b"COMPOUNDEA"]))),
                       (b.CLOSE, b.close_body(ANY))])


# -- file: READ, WRITE, FLUSH, CLOSE, LOCK, QUERY_INFO, SET_INFO, IOCTL ---------------------------

@seed("read", "file")
def _(ctx):
    return one(b.READ, b.read_body(ctx.file_id, 4096), ctx)


@seed("read_past_end_of_file", "file", expect="error")
def _(ctx):
    return one(b.READ, b.read_body(ctx.file_id, 100, offset=1 << 20), ctx)


@seed("write", "file")
def _(ctx):
    return one(b.WRITE, b.write_body(ctx.file_id, bytes(range(256)) * 4, offset=100), ctx)


@seed("write_to_end_of_file", "file", expect="any")
def _(ctx):
    return one(b.WRITE, b.write_body(ctx.file_id, b"appended", offset=0xFFFFFFFFFFFFFFFF), ctx)


@seed("flush", "file")
def _(ctx):
    return one(b.FLUSH, b.flush_body(ctx.file_id), ctx)


@seed("close", "file")
def _(ctx):
    return one(b.CLOSE, b.close_body(ctx.file_id), ctx)


@seed("lock_exclusive_fail_immediately", "file")
def _(ctx):
    return one(b.LOCK, b.lock_body(ctx.file_id, [
        (4096, 100, b.SMB2_LOCKFLAG_EXCLUSIVE_LOCK | b.SMB2_LOCKFLAG_FAIL_IMMEDIATELY)]), ctx)


@seed("lock_two_shared", "file")
def _(ctx):
    flags = b.SMB2_LOCKFLAG_SHARED_LOCK | b.SMB2_LOCKFLAG_FAIL_IMMEDIATELY
    return one(b.LOCK, b.lock_body(ctx.file_id, [(0, 10, flags), (20, 0, flags)]), ctx)


@seed("compound_lock_unlock", "file")
def _(ctx):
    lock = b.lock_body(ctx.file_id, [(50, 50, b.SMB2_LOCKFLAG_EXCLUSIVE_LOCK
                                      | b.SMB2_LOCKFLAG_FAIL_IMMEDIATELY)])
    unlock = b.lock_body(ctx.file_id, [(50, 50, b.SMB2_LOCKFLAG_UNLOCK)])
    return chain(ctx, [(b.LOCK, lock), (b.LOCK, unlock)], related=False)


@seed("oplock_break_acknowledgment", "file", expect="error")
def _(ctx):
    return one(b.OPLOCK_BREAK, b.oplock_break_ack_body(ctx.file_id), ctx)


@seed("compound_unrelated_echo_read_flush", "file")
def _(ctx):
    return chain(ctx, [(b.ECHO, b.four_byte_body()), (b.READ, b.read_body(ctx.file_id, 512)),
                       (b.FLUSH, b.flush_body(ctx.file_id))], related=False)


@seed("compound_read_related_close", "file")
def _(ctx):
    return chain(ctx, [(b.READ, b.read_body(ctx.file_id, 512)), (b.CLOSE, b.close_body(ANY))])


@seed("write_64k_large_frame", "file")
def _(ctx):
    # A frame over the loop's 64 KiB scratch buffer: received into a pooled buffer.
    return one(b.WRITE, b.write_body(ctx.file_id, bytes(range(256)) * 256, offset=4096), ctx)


@seed("read_64k", "file")
def _(ctx):
    return one(b.READ, b.read_body(ctx.file_id, 65536), ctx)


@seed("compound_unrelated_close_then_read", "file", expect="error")
def _(ctx):
    return chain(ctx, [(b.CLOSE, b.close_body(ctx.file_id)),
                       (b.READ, b.read_body(ctx.file_id, 16))], related=False)


@seed("compound_tree_disconnect_then_related_create", "tree", expect="any")
def _(ctx):
    # Should fail (the related CREATE names a tree just disconnected); today it succeeds and
    # the Open outlives its connection: see the corpus' fd-leak finding.
    return chain(ctx, [(b.TREE_DISCONNECT, b.four_byte_body()),
                       (b.CREATE, b.create_body("f.bin", desired_access=b.GENERIC_READ))])


@seed("compound_logoff_then_related_tree_connect", "session", expect="error")
def _(ctx):
    return chain(ctx, [(b.LOGOFF, b.four_byte_body()),
                       (b.TREE_CONNECT, b.tree_connect_body(f"\\\\127.0.0.1\\{ctx.share}"))],
                 tree_id=0)


@seed("transform_header_undecryptable", "session", expect="any")
def _(ctx):
    # MS-SMB2 2.2.41 TRANSFORM_HEADER for the live session around bytes that are not a valid
    # ciphertext: the connection is dropped (3.3.5.2.1.1).
    inner = b.request(b.ECHO, b.four_byte_body(), **ctx.hdr())
    m = b.Msg()
    m.raw(b"\xfdSMB", "ProtocolId", b.ENUM).raw(bytes(16), "Signature", b.DATA)
    m.raw(bytes(range(16)), "Nonce", b.DATA).u32(len(inner), "OriginalMessageSize", b.LENGTH)
    m.u16(0, "Reserved").u16(1, "Flags", b.FLAGS).u64(ctx.session_id, "SessionId", b.ID)
    return [m.raw(bytes(inner.data), "ciphertext", b.DATA)]


# QUERY_INFO: MS-FSCC 2.4 file classes, 2.5 file system classes, security, quota
FILE_CLASSES = {
    "basic": 4, "standard": 5, "internal": 6, "ea": 7, "access": 8, "name": 9, "position": 14,
    "mode": 16, "alignment": 17, "all": 18, "alternate_name": 21, "stream": 22,
    "compression": 28, "network_open": 34, "attribute_tag": 35, "normalized_name": 48,
}
FS_CLASSES = {"volume": 1, "size": 3, "device": 4, "attribute": 5, "control": 6, "full_size": 7,
              "object_id": 8, "sector_size": 11}


def _query_file(info_class: int):
    return lambda ctx: one(b.QUERY_INFO, b.query_info_body(ctx.file_id, b.SMB2_0_INFO_FILE,
                                                           info_class), ctx)


def _query_fs(info_class: int):
    return lambda ctx: one(b.QUERY_INFO, b.query_info_body(ctx.file_id, b.SMB2_0_INFO_FILESYSTEM,
                                                           info_class), ctx)


for _name, _cls in FILE_CLASSES.items():
    seed(f"query_info_file_{_name}", "file")(_query_file(_cls))
for _name, _cls in FS_CLASSES.items():
    seed(f"query_info_fs_{_name}", "file", expect="any" if _cls == 8 else "ok")(_query_fs(_cls))


@seed("query_info_full_ea_list", "file", expect="any")
def _(ctx):
    return one(b.QUERY_INFO, b.query_info_body(
        ctx.file_id, b.SMB2_0_INFO_FILE, 15, data=b.get_ea_list([b"FUZZEA", b"MISSING"])), ctx)


@seed("query_info_security", "file")
def _(ctx):
    return one(b.QUERY_INFO, b.query_info_body(
        ctx.file_id, b.SMB2_0_INFO_SECURITY, 0, additional=b.OWNER_SECURITY_INFORMATION
        | b.GROUP_SECURITY_INFORMATION | b.DACL_SECURITY_INFORMATION), ctx)


@seed("query_info_security_sacl", "file", expect="error")
def _(ctx):
    return one(b.QUERY_INFO, b.query_info_body(ctx.file_id, b.SMB2_0_INFO_SECURITY, 0,
                                               additional=b.SACL_SECURITY_INFORMATION), ctx)


@seed("query_info_quota", "file", expect="any")
def _(ctx):
    return one(b.QUERY_INFO, b.query_info_body(ctx.file_id, b.SMB2_0_INFO_QUOTA, 32,
                                               data=b.quota_query_input([b.EVERYONE])), ctx)


def _set_file(info_class: int, data: b.Buf):
    return lambda ctx: one(b.SET_INFO, b.set_info_body(ctx.file_id, b.SMB2_0_INFO_FILE,
                                                       info_class, data), ctx)


seed("set_info_basic", "file")(_set_file(4, b.basic_information(0x20, 132000000000000000)))
seed("set_info_end_of_file", "file")(_set_file(20, b.Buf().u64(8192, "EndOfFile", b.OFFSET)))
seed("set_info_allocation", "file")(_set_file(19, b.Buf().u64(16384, "AllocationSize",
                                                               b.LENGTH)))
seed("set_info_position", "file")(_set_file(14, b.Buf().u64(512, "CurrentByteOffset",
                                                             b.OFFSET)))
seed("set_info_mode", "file")(_set_file(16, b.Buf().u32(0, "Mode", b.FLAGS)))
seed("set_info_disposition", "file")(_set_file(13, b.Buf().u8(0, "DeletePending", b.FLAGS)))
seed("set_info_rename", "file")(_set_file(10, b.rename_information("f-renamed.bin")))
seed("set_info_link", "file")(_set_file(11, b.rename_information("f-link.bin")))
seed("set_info_full_ea", "file")(_set_file(15, b.full_ea_list(
    [(b"FUZZEA", b"new value", 0), (b"EMPTY", b"", 0)])))


@seed("set_info_security", "file")
def _(ctx):
    return one(b.SET_INFO, b.set_info_body(
        ctx.file_id, b.SMB2_0_INFO_SECURITY, 0, b.security_descriptor(),
        additional=b.OWNER_SECURITY_INFORMATION | b.GROUP_SECURITY_INFORMATION
        | b.DACL_SECURITY_INFORMATION), ctx)


def _fsctl(code: int, data=b"", fid: str = "file_id", max_output: int = 4096):
    return lambda ctx: one(b.IOCTL, b.ioctl_body(
        getattr(ctx, fid) if fid else ANY, code, data() if callable(data) else data,
        max_output=max_output), ctx)


seed("ioctl_request_resume_key", "file")(_fsctl(b.FSCTL_SRV_REQUEST_RESUME_KEY))
seed("ioctl_set_sparse", "file")(_fsctl(b.FSCTL_SET_SPARSE, b.Buf().u8(1, "SetSparse",
                                                                        b.FLAGS)))
seed("ioctl_set_zero_data", "file")(_fsctl(b.FSCTL_SET_ZERO_DATA, b.Buf().u64(
    100, "FileOffset", b.OFFSET).u64(200, "BeyondFinalZero", b.OFFSET)))
seed("ioctl_query_allocated_ranges", "file")(_fsctl(b.FSCTL_QUERY_ALLOCATED_RANGES, b.Buf().u64(
    0, "FileOffset", b.OFFSET).u64(1 << 20, "Length", b.LENGTH)))
seed("ioctl_get_compression", "file")(_fsctl(b.FSCTL_GET_COMPRESSION))
seed("ioctl_set_compression_none", "file")(_fsctl(b.FSCTL_SET_COMPRESSION, b.Buf().u16(
    0, "CompressionState", b.ENUM)))
seed("ioctl_create_or_get_object_id", "file", expect="any")(
    _fsctl(b.FSCTL_CREATE_OR_GET_OBJECT_ID))
seed("ioctl_get_reparse_point_not_a_link", "file", expect="error")(
    _fsctl(b.FSCTL_GET_REPARSE_POINT))
seed("ioctl_query_network_interfaces", "file")(
    _fsctl(b.FSCTL_QUERY_NETWORK_INTERFACE_INFO, fid="", max_output=65536))
seed("ioctl_dfs_get_referrals", "file", expect="error")(
    _fsctl(b.FSCTL_DFS_GET_REFERRALS, b.dfs_referral_input("\\127.0.0.1\\fuzz"), fid=""))


@seed("ioctl_copychunk", "file")
def _(ctx):
    return one(b.IOCTL, b.ioctl_body(ctx.file_id, b.FSCTL_SRV_COPYCHUNK, b.copychunk_input(
        ctx.resume_key, [(0, 4096, 1024), (1024, 6000, 512)]), max_output=12), ctx)


@seed("ioctl_copychunk_write", "file")
def _(ctx):
    return one(b.IOCTL, b.ioctl_body(ctx.file_id, b.FSCTL_SRV_COPYCHUNK_WRITE, b.copychunk_input(
        ctx.resume_key, [(0, 2048, 100)]), max_output=12), ctx)


# -- file2: a blocking LOCK that waits, then CANCEL ------------------------------------------------

@seed("lock_blocking_then_cancel", "file2", expect="any")
def _(ctx):
    lock = b.request(b.LOCK, b.lock_body(ctx.file_id, [(0, 16, b.SMB2_LOCKFLAG_EXCLUSIVE_LOCK)]),
                     **ctx.hdr(0))
    cancel = b.request(b.CANCEL, b.four_byte_body(), **ctx.hdr(0))  # sync: the LOCK's MessageId
    return [lock, cancel]


@seed("lock_blocking_then_async_cancel", "file2", expect="any")
def _(ctx):
    lock = b.request(b.LOCK, b.lock_body(ctx.file_id, [(0, 16, b.SMB2_LOCKFLAG_EXCLUSIVE_LOCK)]),
                     **ctx.hdr(0))
    # The connection's first async request gets AsyncId 1 (a guess a real client would not
    # make; mutations change it anyway).
    cancel = b.request(b.CANCEL, b.four_byte_body(), **ctx.hdr(1, async_id=1))
    return [lock, cancel]


def _pending_lock_then(ctx: Ctx, *after: tuple[int, b.Buf, dict]) -> list[b.Msg]:
    """A blocking LOCK that waits on the second open's lock, then `after` (command, body,
    header arguments): what happens to the waiter when its open, tree or session goes, or
    when the lock it waits for is released."""
    frames = [b.request(b.LOCK, b.lock_body(ctx.file_id, [(0, 16, b.SMB2_LOCKFLAG_EXCLUSIVE_LOCK)]),
                        **ctx.hdr(0))]
    for i, (command, body, hdr) in enumerate(after, 1):
        frames.append(b.request(command, body, **ctx.hdr(i, **hdr)))
    return frames


seed("lock_pending_then_close_waiter", "file2", expect="any")(lambda ctx: _pending_lock_then(
    ctx, (b.CLOSE, b.close_body(ctx.file_id), {}),
    (b.LOCK, b.lock_body(ctx.file_id2, [(0, 16, b.SMB2_LOCKFLAG_UNLOCK)]), {})))
seed("lock_pending_then_unlock_holder", "file2", expect="any")(lambda ctx: _pending_lock_then(
    ctx, (b.LOCK, b.lock_body(ctx.file_id2, [(0, 16, b.SMB2_LOCKFLAG_UNLOCK)]), {}),
    (b.READ, b.read_body(ctx.file_id, 16), {})))
seed("lock_pending_then_close_holder", "file2", expect="any")(lambda ctx: _pending_lock_then(
    ctx, (b.CLOSE, b.close_body(ctx.file_id2), {}),
    (b.LOCK, b.lock_body(ctx.file_id, [(0, 16, b.SMB2_LOCKFLAG_UNLOCK)]), {})))
seed("lock_pending_then_tree_disconnect", "file2", expect="any")(lambda ctx: _pending_lock_then(
    ctx, (b.TREE_DISCONNECT, b.four_byte_body(), {})))
seed("lock_pending_then_logoff", "file2", expect="any")(lambda ctx: _pending_lock_then(
    ctx, (b.LOGOFF, b.four_byte_body(), {})))
seed("lock_pending_then_second_waiter", "file2", expect="any")(lambda ctx: _pending_lock_then(
    ctx, (b.LOCK, b.lock_body(ctx.file_id, [(8, 8, b.SMB2_LOCKFLAG_SHARED_LOCK)]), {}),
    (b.CLOSE, b.close_body(ctx.file_id2), {})))
seed("compound_lock_blocking_in_the_middle", "file2", expect="any")(lambda ctx: chain(ctx, [
    (b.LOCK, b.lock_body(ctx.file_id, [(0, 16, b.SMB2_LOCKFLAG_EXCLUSIVE_LOCK)])),
    (b.READ, b.read_body(ctx.file_id, 16))], related=False))


# -- dir: QUERY_DIRECTORY, CHANGE_NOTIFY --------------------------------------------------------

DIRECTORY_CLASSES = {"directory": 1, "full": 2, "both": 3, "names": 12, "id_both": 37,
                     "id_full": 38}
for _name, _cls in DIRECTORY_CLASSES.items():
    seed(f"query_directory_{_name}", "dir")(
        lambda ctx, c=_cls: one(b.QUERY_DIRECTORY, b.query_directory_body(ctx.dir_id,
                                                                           info_class=c), ctx))


@seed("query_directory_pattern_restart_single", "dir")
def _(ctx):
    return one(b.QUERY_DIRECTORY, b.query_directory_body(ctx.dir_id, "?.txt", flags=0x3), ctx)


@seed("query_directory_reopen_small_buffer", "dir")
def _(ctx):
    return one(b.QUERY_DIRECTORY, b.query_directory_body(ctx.dir_id, "*", flags=0x10,
                                                         output_length=200), ctx)


@seed("query_directory_index_specified", "dir", expect="any")
def _(ctx):
    return one(b.QUERY_DIRECTORY, b.query_directory_body(ctx.dir_id, "*", flags=0x4,
                                                         file_index=2), ctx)


@seed("change_notify", "dir", expect="error")
def _(ctx):
    return one(b.CHANGE_NOTIFY, b.change_notify_body(ctx.dir_id), ctx)


@seed("query_info_directory_all", "dir")
def _(ctx):
    return one(b.QUERY_INFO, b.query_info_body(ctx.dir_id, b.SMB2_0_INFO_FILE, 18), ctx)


# -- pipe / bound: DCE/RPC on IPC$ (bind, srvsvc NetrShareEnum and friends) -------------------

@seed("ioctl_pipe_transceive_bind", "pipe")
def _(ctx):
    return one(b.IOCTL, b.ioctl_body(ctx.pipe_id, b.FSCTL_PIPE_TRANSCEIVE, b.rpc_bind()), ctx)


@seed("write_pipe_bind", "pipe")
def _(ctx):
    return one(b.WRITE, b.write_body(ctx.pipe_id, bytes(b.rpc_bind().data)), ctx)


@seed("compound_write_bind_read", "pipe")
def _(ctx):
    return chain(ctx, [(b.WRITE, b.write_body(ctx.pipe_id, b.rpc_bind().data)),
                       (b.READ, b.read_body(ANY, 1024))])


@seed("query_info_pipe_standard", "pipe", expect="error")  # not on pipes
def _(ctx):
    return one(b.QUERY_INFO, b.query_info_body(ctx.pipe_id, b.SMB2_0_INFO_FILE, 5), ctx)


def _transceive(opnum: int, stub):
    return lambda ctx: one(b.IOCTL, b.ioctl_body(ctx.pipe_id, b.FSCTL_PIPE_TRANSCEIVE,
                                                 b.rpc_request(opnum, stub())), ctx)


seed("ioctl_pipe_netr_share_enum", "bound")(_transceive(15, b.netr_share_enum_stub))
seed("ioctl_pipe_netr_share_enum_level2", "bound")(
    _transceive(15, lambda: b.netr_share_enum_stub(level=2)))
seed("ioctl_pipe_netr_share_get_info", "bound")(_transceive(16, b.netr_share_get_info_stub))
seed("ioctl_pipe_netr_server_get_info", "bound")(_transceive(21, b.netr_server_get_info_stub))


@seed("write_read_pipe_netr_share_enum", "bound")
def _(ctx):
    write = b.request(b.WRITE, b.write_body(ctx.pipe_id, b.rpc_request(
        15, b.netr_share_enum_stub()).data), **ctx.hdr(0))
    read = b.request(b.READ, b.read_body(ctx.pipe_id, 4280), **ctx.hdr(1))
    return [write, read]


@seed("ioctl_pipe_transceive_bind_ndr64_features", "pipe")
def _(ctx):
    bind = b.rpc_bind(extra_contexts=[(b.SRVSVC_SYNTAX, (b.NDR64_SYNTAX,)),
                                      (b.SRVSVC_SYNTAX, (b.BIND_TIME_FEATURES,))])
    return one(b.IOCTL, b.ioctl_body(ctx.pipe_id, b.FSCTL_PIPE_TRANSCEIVE, bind), ctx)


@seed("compound_wkssvc_create_bind_get_info_close", "pipe")
def _(ctx):
    return chain(ctx, [
        (b.CREATE, b.create_body("wkssvc", desired_access=0x0012019F, file_attributes=0,
                                 disposition=b.FILE_OPEN)),
        (b.IOCTL, b.ioctl_body(ANY, b.FSCTL_PIPE_TRANSCEIVE, b.rpc_bind(abstract=b.WKSSVC_SYNTAX))),
        (b.IOCTL, b.ioctl_body(ANY, b.FSCTL_PIPE_TRANSCEIVE,
                               b.rpc_request(0, b.netr_wksta_get_info_stub()))),
        (b.CLOSE, b.close_body(ANY))])


@seed("ioctl_pipe_peek", "pipe", expect="any")
def _(ctx):
    return one(b.IOCTL, b.ioctl_body(ctx.pipe_id, 0x0011400C), ctx)


@seed("ioctl_pipe_wait", "pipe", expect="any")
def _(ctx):
    name = b.utf16("srvsvc")
    data = b.Buf().u64(0, "Timeout", b.VALUE).u32(len(name), "NameLength", b.LENGTH)
    data.u8(0, "TimeoutSpecified", b.FLAGS).u8(0, "Padding").raw(name, "Name")
    return one(b.IOCTL, b.ioctl_body(ANY, 0x00110018, data), ctx)


@seed("ioctl_pipe_alter_context", "bound")
def _(ctx):
    return one(b.IOCTL, b.ioctl_body(ctx.pipe_id, b.FSCTL_PIPE_TRANSCEIVE,
                                     b.rpc_bind(call_id=3, ptype=b.RPC_ALTER_CONTEXT)), ctx)


@seed("ioctl_pipe_unknown_opnum", "bound")
def _(ctx):
    return one(b.IOCTL, b.ioctl_body(ctx.pipe_id, b.FSCTL_PIPE_TRANSCEIVE,
                                     b.rpc_request(99, b.Buf().u32(0, "x"))), ctx)


@seed("ioctl_pipe_request_unbound_context", "bound")
def _(ctx):
    return one(b.IOCTL, b.ioctl_body(ctx.pipe_id, b.FSCTL_PIPE_TRANSCEIVE,
                                     b.rpc_request(15, b.netr_share_enum_stub(), context_id=5)),
               ctx)


@seed("write_pipe_fragmented_request_then_read", "bound")
def _(ctx):
    stub = bytes(b.netr_share_enum_stub().data)
    half = len(stub) // 2 & ~3
    first = b.rpc_request(15, b.Buf().raw(stub[:half], "stub"), call_id=4,
                          flags=b.PFC_FIRST_FRAG, alloc_hint=len(stub))
    last = b.rpc_request(15, b.Buf().raw(stub[half:], "stub"), call_id=4, flags=b.PFC_LAST_FRAG,
                         alloc_hint=len(stub) - half)
    return [b.request(b.WRITE, b.write_body(ctx.pipe_id, bytes(first.data)), **ctx.hdr(0)),
            b.request(b.WRITE, b.write_body(ctx.pipe_id, bytes(last.data)), **ctx.hdr(1)),
            b.request(b.READ, b.read_body(ctx.pipe_id, 4280), **ctx.hdr(2))]


# -- more CREATE contexts, dispositions, SET_INFO classes and FSCTLs ----------------------------

@seed("create_durable_v2_lease_v2", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("dh2.txt", contexts=[
        b.create_context(b"DH2Q", b.durable_request_v2()),
        b.create_context(b"RqLs", b.lease_request_v2()),
        b.create_context(b.APP_INSTANCE_ID, b.app_instance_id())], oplock=0xFF), ctx)


@seed("create_durable_reconnect", "tree", expect="error")
def _(ctx):
    return one(b.CREATE, b.create_body("f.bin", contexts=[
        b.create_context(b"DHnC", b.Buf().file_id(bytes(range(16))))]), ctx)


@seed("create_durable_reconnect_v2", "tree", expect="error")
def _(ctx):
    return one(b.CREATE, b.create_body("f.bin", contexts=[
        b.create_context(b"DH2C", b.durable_reconnect_v2(bytes(range(16))))]), ctx)


@seed("create_aapl", "tree", expect="any")
def _(ctx):
    aapl = b.Buf().u32(1, "CommandCode", b.ENUM).u32(0, "Reserved").u64(7, "RequestBitmap",
                                                                         b.FLAGS)
    aapl.u64(7, "ClientCapabilities", b.FLAGS)
    return one(b.CREATE, b.create_body("f.bin", desired_access=b.GENERIC_READ, contexts=[
        b.create_context(b"AAPL", aapl)]), ctx)


@seed("create_supersede", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("sup.txt", disposition=b.FILE_SUPERSEDE), ctx)


@seed("create_new_existing", "tree", expect="error")
def _(ctx):
    return one(b.CREATE, b.create_body("f.bin", disposition=b.FILE_CREATE), ctx)


@seed("create_directory_delete_on_close", "tree")
def _(ctx):
    return one(b.CREATE, b.create_body("cdoc", options=b.FILE_DIRECTORY_FILE
                                       | b.FILE_DELETE_ON_CLOSE,
                                       file_attributes=b.FILE_ATTRIBUTE_DIRECTORY), ctx)


@seed("tree_connect_extension", "session", expect="any")
def _(ctx):
    return one(b.TREE_CONNECT, b.tree_connect_extension_body(f"\\\\127.0.0.1\\{ctx.share}"), ctx,
               tree_id=0)


@seed("session_setup_binding", "session", expect="error")
def _(ctx):
    return one(b.SESSION_SETUP, b.session_setup_body(b.spnego_init(b.ntlm_negotiate()), flags=1),
               ctx)


seed("set_info_valid_data_length", "file", expect="any")(
    _set_file(39, b.Buf().u64(100, "ValidDataLength", b.OFFSET)))
seed("set_info_short_name", "file", expect="any")(
    _set_file(40, b.Buf().u32(10, "FileNameLength", b.LENGTH).raw(b.utf16("F~1.B"), "FileName")))
seed("set_info_disposition_ex", "file", expect="any")(
    _set_file(64, b.Buf().u32(0x0, "Flags", b.FLAGS)))


@seed("set_info_fs_control", "file", expect="any")
def _(ctx):
    data = b.Buf().u64(0, "FreeSpaceStartFiltering").u64(0, "FreeSpaceThreshold")
    data.u64(0, "FreeSpaceStopFiltering").u64(0, "DefaultQuotaThreshold")
    data.u64(0, "DefaultQuotaLimit").u32(0, "FileSystemControlFlags", b.FLAGS).u32(0, "Padding")
    return one(b.SET_INFO, b.set_info_body(ctx.file_id, b.SMB2_0_INFO_FILESYSTEM, 6, data), ctx)


seed("query_info_file_id", "file", expect="any")(_query_file(59))
seed("ioctl_set_reparse_point", "file", expect="error")(
    _fsctl(0x000900A4, b.symlink_reparse_buffer()))
seed("ioctl_file_level_trim", "file", expect="any")(_fsctl(0x00098208, b.Buf().u32(
    0, "Key").u32(1, "NumRanges", b.COUNT).u64(0, "Offset", b.OFFSET).u64(4096, "Length",
                                                                           b.LENGTH)))
seed("ioctl_enumerate_snapshots", "file", expect="any")(_fsctl(0x00144064, max_output=16))
seed("ioctl_unknown_code", "file", expect="error")(_fsctl(0x00DEAD00))


@seed("ioctl_duplicate_extents", "file", expect="any")
def _(ctx):
    data = b.Buf().file_id(ctx.file_id, "FileHandle").u64(0, "SourceFileOffset", b.OFFSET)
    data.u64(4096, "TargetFileOffset", b.OFFSET).u64(4096, "ByteCount", b.LENGTH)
    return one(b.IOCTL, b.ioctl_body(ctx.file_id, 0x00098344, data), ctx)


# -- other dialects -------------------------------------------------------------------------------

@seed("validate_negotiate_info_302", "tree", dialect=b.SMB3_02)
def _(ctx):
    data = b.validate_negotiate_input(ctx.dialects, capabilities=ctx.capabilities,
                                      guid=ctx.client_guid,
                                      security_mode=b.SMB2_NEGOTIATE_SIGNING_ENABLED)
    return one(b.IOCTL, b.ioctl_body(ANY, b.FSCTL_VALIDATE_NEGOTIATE_INFO, data, max_output=24),
               ctx)


@seed("read_202", "file", dialect=b.SMB2_02)
def _(ctx):
    return one(b.READ, b.read_body(ctx.file_id, 4096), ctx)


@seed("compound_create_write_read_close_210", "tree", dialect=b.SMB2_10)
def _(ctx):
    return chain(ctx, [(b.CREATE, b.create_body("cw21.txt", disposition=b.FILE_OVERWRITE_IF)),
                       (b.WRITE, b.write_body(ANY, b"2.1 data")), (b.READ, b.read_body(ANY, 8)),
                       (b.CLOSE, b.close_body(ANY))])


@seed("query_info_all_300", "file", dialect=b.SMB3_00)
def _(ctx):
    return one(b.QUERY_INFO, b.query_info_body(ctx.file_id, b.SMB2_0_INFO_FILE, 18), ctx)


# -- the epilogue: unmutated requests after the fuzzed frames, reading the state they left -----

EPILOGUE_GAP = 40  # its MessageIds start this far after the prefix's (room for chains, twice)


def _list_root(ctx: Ctx, k: int, name: str = "") -> list[b.Msg]:
    return chain(ctx, [
        (b.CREATE, b.create_body(name, desired_access=b.GENERIC_READ, disposition=b.FILE_OPEN,
                                 options=b.FILE_DIRECTORY_FILE)),
        (b.QUERY_DIRECTORY, b.query_directory_body(ANY, flags=0x1, output_length=65536)),
        (b.QUERY_DIRECTORY, b.query_directory_body(ANY, info_class=3, flags=0x1,
                                                   output_length=65536)),
        (b.CLOSE, b.close_body(ANY))], k=k)


def _read_back(ctx: Ctx, k: int, name: str) -> list[b.Msg]:
    """Open `name` again (the access check on whatever descriptor it has now) and read back
    what a fuzzed request may have stored: EAs, security descriptor, streams, all info."""
    return chain(ctx, [
        (b.CREATE, b.create_body(name, desired_access=b.GENERIC_READ | b.READ_CONTROL,
                                 disposition=b.FILE_OPEN)),
        (b.QUERY_INFO, b.query_info_body(ANY, b.SMB2_0_INFO_FILE, 15, output_length=65536)),
        (b.QUERY_INFO, b.query_info_body(ANY, b.SMB2_0_INFO_SECURITY, 0, additional=0x7)),
        (b.QUERY_INFO, b.query_info_body(ANY, b.SMB2_0_INFO_FILE, 22)),
        (b.QUERY_INFO, b.query_info_body(ANY, b.SMB2_0_INFO_FILE, 18)),
        (b.CLOSE, b.close_body(ANY))], k=k)


def epilogue(level: str, ctx: Ctx) -> list[b.Msg]:
    """What is sent after a case's frames on levels with a tree or a pipe. Its answers are
    checked like the others (framing, internal errors, the log) but not counted as the fuzzed
    request's."""
    k = EPILOGUE_GAP
    if level in ("file", "file2"):
        return (_read_back(ctx, k, "f.bin") + _list_root(ctx, k + 6)
                + chain(ctx, [(b.QUERY_INFO, b.query_info_body(ctx.file_id, b.SMB2_0_INFO_FILE,
                                                                18))], k=k + 10))
    if level == "tree":
        return (_list_root(ctx, k) + _read_back(ctx, k + 4, "c-ctx.txt")
                + _list_root(ctx, k + 10, "d"))
    if level == "dir":
        return (chain(ctx, [(b.QUERY_DIRECTORY, b.query_directory_body(ctx.dir_id))], k=k)
                + _list_root(ctx, k + 1))
    if level in ("pipe", "bound"):
        return [b.request(b.IOCTL, b.ioctl_body(ctx.pipe_id, b.FSCTL_PIPE_TRANSCEIVE,
                                                b.rpc_request(15, b.netr_share_enum_stub(),
                                                              call_id=9)), **ctx.hdr(k)),
                b.request(b.READ, b.read_body(ctx.pipe_id, 4280), **ctx.hdr(k + 1))]
    if level == "session":
        return chain(ctx, [(b.ECHO, b.four_byte_body()),
                           (b.TREE_CONNECT, b.tree_connect_body(f"\\\\127.0.0.1\\{ctx.share}"))],
                     related=False, k=k, tree_id=0)
    return []


BY_NAME = {s.name: s for s in SEEDS}
assert len(BY_NAME) == len(SEEDS), "seed names must be unique"
