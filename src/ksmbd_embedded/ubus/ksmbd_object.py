"""The methods of the ubus object `ksmbd`, callable without any socket.

``KsmbdObject(state).call(method, args)`` returns ``(status, reply)``: a ubus status code
(`message.UBUS_STATUS_*`) and a JSON-like dict, or None. Failures carry ``{"error": text}``
so that `ubus call` prints why; LuCI only sees the status. ``SIGNATURES`` is what the object
announces (method -> {argument: blobmsg type}). The wire side lives in `client.py`.

Numbers: ids, counts and byte totals are integers; 64-bit values above 2**53 (byte-range
lock ends near 2**64) are given as decimal strings, because JavaScript numbers lose them.

Size: ubusd drops a client that sends a message over 1 MiB (UBUS_MAX_MSGLEN), so every list
that grows with the server's state is paged: `sessions`, `open_files`, `shares` and `users`
take `offset` (default 0) and `limit` (default DEFAULT_LIMIT) and answer
``{<list>: [...], "offset": offset, "total": entries in all}``. A page also ends before its
encoded entries would pass PAGE_BUDGET (a quarter of the limit), whatever `limit` asks for,
so a page may hold fewer entries than asked: the next one starts at offset + len(list). One
entry is bounded on its own, well under the limit (names and paths come from 16-bit length
fields, so at most ~200 KiB of UTF-8 in a session's names and 96 KiB in a path; share names
are at most 63 bytes, a session has at most 1,024 trees, and an open's lock list is cut at
MAX_LOCKS), so any page fits, even with worst-case paths.
Entries are in creation order (sessions, opens) or configuration order (shares, users);
one that goes away between two calls shifts the later ones back by one.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from .. import __version__, io_budget
from ..conn_limits import ConnTable
from ..header import DIALECT_NAMES
from ..pwddb import PasswordDb, nt_hash, validate_password, validate_user_name
from ..session import VALID
from .blob import BLOBMSG_TYPE_INT32, BLOBMSG_TYPE_INT64, BLOBMSG_TYPE_STRING, encode_value
from .message import (
    UBUS_STATUS_INVALID_ARGUMENT, UBUS_STATUS_METHOD_NOT_FOUND, UBUS_STATUS_NOT_FOUND,
    UBUS_STATUS_NOT_SUPPORTED, UBUS_STATUS_OK, UBUS_STATUS_SYSTEM_ERROR,
    UBUS_STATUS_UNKNOWN_ERROR,
)

log = logging.getLogger("ksmbd.ubus")

__all__ = ["KsmbdObject"]

_CIPHER_NAMES = {1: "AES-128-CCM", 2: "AES-128-GCM", 3: "AES-256-CCM", 4: "AES-256-GCM"}
_SIGNING_NAMES = {0: "HMAC-SHA256", 1: "AES-CMAC", 2: "AES-GMAC"}
_JS_SAFE = 2**53

DEFAULT_LIMIT = 100  # entries per page when the caller does not say
PAGE_BUDGET = 256 * 1024  # encoded bytes of one page's entries: a quarter of UBUS_MAX_MSGLEN
MAX_LOCKS = 32  # byte-range locks listed per open (`lock_count` has them all)
_PAGED = {"offset": BLOBMSG_TYPE_INT32, "limit": BLOBMSG_TYPE_INT32}

# Access mask bits (MS-DTYP 2.4.3) shown by name in open_files.
_ACCESS_BITS = (
    (0x00000001, "read"), (0x00000002, "write"), (0x00000004, "append"),
    (0x00000008, "read_ea"), (0x00000010, "write_ea"), (0x00000020, "execute"),
    (0x00000040, "delete_child"), (0x00000080, "read_attributes"),
    (0x00000100, "write_attributes"), (0x00010000, "delete"), (0x00020000, "read_control"),
    (0x00040000, "write_dac"), (0x00080000, "write_owner"), (0x00100000, "synchronize"),
)
_SHARE_BITS = ((1, "read"), (2, "write"), (4, "delete"))


class _BadArgs(Exception):
    pass


_OPLOCK_NAMES = {0x00: "none", 0x01: "level2", 0x08: "exclusive", 0x09: "batch",
                 0xFF: "lease"}


def _u64(value: int) -> int | str:
    return value if value < _JS_SAFE else str(value)


def _flags(value: int, table: tuple) -> list[str]:
    return [name for bit, name in table if value & bit]


def _text(value: str) -> str:
    """A string as valid UTF-8 can carry it: names from the network may hold lone
    surrogates (NTLM names are decoded with surrogatepass), shown escaped (\\udc80)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


class KsmbdObject:
    """The `ksmbd` object's methods over a ServerState."""

    SIGNATURES: dict[str, dict[str, int]] = {
        "status": {},
        "sessions": _PAGED,
        "open_files": _PAGED,
        "shares": _PAGED,
        "disconnect": {"session": BLOBMSG_TYPE_INT64},
        "close_file": {"id": BLOBMSG_TYPE_INT32},
        "reload": {},
        "users": _PAGED,
        "user_add": {"name": BLOBMSG_TYPE_STRING, "password": BLOBMSG_TYPE_STRING},
        "user_del": {"name": BLOBMSG_TYPE_STRING},
        "user_passwd": {"name": BLOBMSG_TYPE_STRING, "password": BLOBMSG_TYPE_STRING},
    }

    def __init__(self, state: Any) -> None:
        self.state = state

    def call(self, method: str, args: dict | None) -> tuple[int, dict | None]:
        """Run one method; never raises."""
        if method not in self.SIGNATURES:
            return UBUS_STATUS_METHOD_NOT_FOUND, None
        if args is None:
            args = {}
        if not isinstance(args, dict):
            return UBUS_STATUS_INVALID_ARGUMENT, {"error": "arguments must be an object"}
        try:
            return getattr(self, "_m_" + method)(args)
        except _BadArgs as exc:
            return UBUS_STATUS_INVALID_ARGUMENT, {"error": str(exc)}
        except Exception as exc:  # a bug must not take the server down
            log.exception("ubus method %s failed", method)
            return UBUS_STATUS_UNKNOWN_ERROR, {"error": f"internal error: {exc}"}

    # -- argument helpers -------------------------------------------------------------------

    @staticmethod
    def _string(args: dict, key: str) -> str:
        value = args.get(key)
        if not isinstance(value, str):
            raise _BadArgs(f"'{key}' must be a string")
        return value

    @staticmethod
    def _integer(args: dict, key: str) -> int:
        """An id given as a number, or as a decimal or 0x-hex string (what JSON tools keep)."""
        value = args.get(key)
        if isinstance(value, bool):
            raise _BadArgs(f"'{key}' must be an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value, 0)
            except ValueError:
                pass
        raise _BadArgs(f"'{key}' must be an integer")

    def _count(self, args: dict, key: str, default: int, minimum: int) -> int:
        if args.get(key) is None:
            return default
        value = self._integer(args, key)
        if value < minimum:
            raise _BadArgs(f"'{key}' must be at least {minimum}")
        return value

    def _page(self, args: dict, key: str, items: Iterable, total: int,
              entry: Callable[[Any], dict]) -> tuple[int, dict]:
        """One page of a list: `limit` entries from `offset` at most, and no more than
        PAGE_BUDGET bytes of them once encoded (but at least one, so paging moves on)."""
        offset = self._count(args, "offset", 0, 0)
        limit = self._count(args, "limit", DEFAULT_LIMIT, 1)
        out: list[dict] = []
        used = 0
        for item in itertools.islice(items, offset, None):
            if len(out) >= limit:
                break
            value = entry(item)
            size = len(encode_value("", value))
            if out and used + size > PAGE_BUDGET:
                break
            out.append(value)
            used += size
        return UBUS_STATUS_OK, {key: out, "offset": offset, "total": total}

    # -- read methods -----------------------------------------------------------------------

    def _m_status(self, args: dict) -> tuple[int, dict]:
        st = self.state
        dialects: dict[str, int] = {}
        ciphers: dict[str, int] = {}
        for conn in st.connections:
            if conn.dialect in DIALECT_NAMES:
                name = DIALECT_NAMES[conn.dialect]
                dialects[name] = dialects.get(name, 0) + 1
            if conn.cipher_id in _CIPHER_NAMES:
                name = _CIPHER_NAMES[conn.cipher_id]
                ciphers[name] = ciphers.get(name, 0) + 1
        sessions = [s for s in st.sessions.values() if s.state == VALID]
        # Connections refused by rule, reclaimed for new ones, closed by a timer (listeners.py,
        # conn_limits.py); zeros when there is no loop.
        table = getattr(getattr(st, "loop", None), "conns", None)
        limits = (table if table is not None else ConnTable()).counters()
        # and by hosts allow / hosts deny (host_access.py): hosts_deny, share_hosts_allow, ...
        limits["refused"] = {**limits.get("refused", {}), **st.refusals.counts}
        return UBUS_STATUS_OK, {
            "version": __version__,
            "uptime": int(time.monotonic() - st.start_monotonic),
            "listen": self._listening(),
            "connections": len(st.connections),
            "sessions": len(sessions),
            "trees": sum(len(s.trees) for s in sessions),
            "opens": len(st.opens),
            "bytes_read": _u64(st.bytes_read),
            "bytes_written": _u64(st.bytes_written),
            "dialects": dialects,
            "negotiated_ciphers": ciphers,  # per connection; sessions says which encrypt
            "shares": len(st.config.shares),
            "users": len(st.pwddb),
            **limits,
            # I/O buffers against `memory_limit` (io_budget.py)
            "io_buffers": io_budget.counters(getattr(st, "loop", None), st.config.memory_limit),
            "oplock_breaks": self._oplock_breaks(),
        }

    def _oplock_breaks(self) -> dict:
        """Oplock break notifications sent, acknowledged, timed out (caching/breaks.py),
        and those waiting for an acknowledgment now."""
        from ..caching.breaks import peek
        bt = peek(self.state)
        if bt is None:
            return {"sent": 0, "acknowledged": 0, "timed_out": 0, "pending": 0}
        return {"sent": bt.sent, "acknowledged": bt.acknowledged, "timed_out": bt.timed_out,
                "pending": len(bt.pending)}

    def _listening(self) -> list[str]:
        loop = getattr(self.state, "loop", None)
        out = []
        for sock in getattr(loop, "listeners", ()) or ():
            try:
                addr = sock.getsockname()
            except OSError:
                continue
            out.append(f"[{addr[0]}]:{addr[1]}" if ":" in addr[0] else f"{addr[0]}:{addr[1]}")
        return out

    def _m_sessions(self, args: dict) -> tuple[int, dict]:
        st = self.state
        now = st.now()
        opens_per: dict[int, int] = {}
        for op in st.opens.by_id.values():
            sid = op.session.session_id
            opens_per[sid] = opens_per.get(sid, 0) + 1

        def entry(s) -> dict:
            conn = s.connection
            trees = list(s.trees.values())
            # Encrypted: the server demands it (EncryptData), or the client encrypts on its
            # own (Session.client_encrypts, noted at its first request after the logon).
            encrypted = s.encryptor is not None and bool(
                s.encrypt_data or s.client_encrypts)
            return {
                "id": s.session_id,
                "user": _text(s.user),
                "domain": _text(s.domain),
                "guest": bool(s.is_guest),
                "anonymous": bool(s.is_anonymous),
                "state": s.state,
                "client": conn.peer,
                "dialect": DIALECT_NAMES.get(conn.dialect, ""),
                "signing_required": bool(s.signing_required),
                "signing_algorithm": _SIGNING_NAMES.get(conn.signing_algorithm, "")
                if s.signer is not None else "",
                "negotiated_cipher": _CIPHER_NAMES.get(conn.cipher_id, "")
                if s.encryptor is not None else "",
                "encrypted": encrypted,
                "encrypted_shares": [t.share_name for t in trees
                                     if encrypted or t.encrypt_data],
                "trees": [t.share_name for t in trees],
                "open_count": opens_per.get(s.session_id, 0),
                "idle": int(max(0.0, now - s.idle_since)),
                "connected": int(max(0.0, now - s.created)),
                "bytes_read": _u64(s.bytes_read),
                "bytes_written": _u64(s.bytes_written),
            }

        return self._page(args, "sessions", st.sessions.values(), len(st.sessions), entry)

    def _m_open_files(self, args: dict) -> tuple[int, dict]:
        from ..fs import byte_locks
        st = self.state

        def entry(op) -> dict:
            held = byte_locks.locks_of(st, op)
            return {
                "id": op.volatile_id,
                "share": op.tree.share_name,
                "path": _text(op.name.replace("\\", "/")),
                "directory": bool(op.is_dir),
                "session": op.session.session_id,
                "user": _text(op.session.user),
                "client": op.session.connection.peer,
                "access": _flags(op.granted_access, _ACCESS_BITS),
                "share_access": _flags(op.share_access, _SHARE_BITS),
                "delete_on_close": bool(op.delete_on_close),
                # the SMB2 oplock level held; "breaking" while an acknowledgment is due
                "oplock": _OPLOCK_NAMES.get(op.oplock_level, "none"),
                "oplock_breaking": op.oplock_state == 2,
                "lock_count": len(held),
                "locks": [{"offset": _u64(o), "length": _u64(n), "exclusive": ex}
                          for o, n, ex in held[:MAX_LOCKS]],
            }

        return self._page(args, "open_files", st.opens.by_id.values(), len(st.opens.by_id),
                          entry)

    def _m_shares(self, args: dict) -> tuple[int, dict]:
        from ..fs.fs_caps import caps_for
        st = self.state
        connected: dict[str, int] = {}
        for s in st.sessions.values():
            for t in s.trees.values():
                key = t.share_name.casefold()
                connected[key] = connected.get(key, 0) + 1

        def entry(share) -> dict:
            root = st.share_roots.get(share.name.lower(), os.path.realpath(share.path))
            out: dict[str, Any] = {
                "name": share.name, "path": share.path, "comment": share.comment,
                "read_only": bool(share.read_only), "guest_ok": bool(share.guest_ok),
                "browseable": bool(share.browseable),
                "connected": connected.get(share.name.casefold(), 0),
            }
            try:
                vfs = os.statvfs(root)
            except OSError as exc:
                out.update(available=False, error=exc.strerror or str(exc), fs_type="",
                           total=0, free=0)
            else:
                out.update(available=True, fs_type=caps_for(root).fs_type,
                           total=_u64(vfs.f_blocks * vfs.f_frsize),
                           free=_u64(vfs.f_bavail * vfs.f_frsize))
            return out

        shares = st.config.shares
        return self._page(args, "shares", shares, len(shares), entry)

    def _m_users(self, args: dict) -> tuple[int, dict]:
        per_user: dict[str, int] = {}
        for s in self.state.sessions.values():
            if s.state == VALID and s.user and not s.is_guest and not s.is_anonymous:
                per_user[s.user.casefold()] = per_user.get(s.user.casefold(), 0) + 1
        names = self.state.pwddb.names()
        return self._page(args, "users", names, len(names), lambda name: {
            "name": name, "sessions": per_user.get(name.casefold(), 0)})

    # -- actions ----------------------------------------------------------------------------

    def _m_disconnect(self, args: dict) -> tuple[int, dict | None]:
        sid = self._integer(args, "session")
        session = self.state.sessions.get(sid)
        if session is None:
            return UBUS_STATUS_NOT_FOUND, {"error": f"no session {sid}"}
        conn = session.connection
        loop = getattr(self.state, "loop", None)
        if loop is None or not loop.disconnect(conn, "disconnected by the administrator"):
            # No live transport (a connection already being torn down): end the session.
            from ..handlers.session_setup import close_session
            close_session(self.state, session)
        log.info("session 0x%x (%s, %s) disconnected", sid, session.user or "-",
                 conn.peer)
        return UBUS_STATUS_OK, None

    def _m_close_file(self, args: dict) -> tuple[int, dict | None]:
        from ..fs.share_modes import close_open
        fid = self._integer(args, "id")
        op = self.state.opens.get(fid)
        if op is None:
            return UBUS_STATUS_NOT_FOUND, {"error": f"no open file {fid}"}
        conn = op.session.connection
        # Requests waiting on this handle (CHANGE_NOTIFY, blocking LOCK) end with it.
        conn.cancel_async(lambda work: getattr(work, "open", None) is op)
        close_open(self.state, op)
        log.info("closed %s\\%s (id %d) of %s", op.tree.share_name, op.name, fid,
                 conn.peer)
        return UBUS_STATUS_OK, None

    def _m_reload(self, args: dict) -> tuple[int, dict | None]:
        st = self.state
        try:
            st.reload()
        except Exception as exc:  # a bad new config keeps the old one running (as SIGHUP)
            log.error("reload failed, keeping the running configuration: %s", exc)
            return UBUS_STATUS_UNKNOWN_ERROR, {"error": f"reload failed: {exc}"}
        loop = getattr(st, "loop", None)
        compute = getattr(loop, "_compute_max_frame", None)
        if compute is not None:
            loop.max_frame = compute()
        return UBUS_STATUS_OK, {"shares": len(st.config.shares), "users": len(st.pwddb)}

    def _change_users(self, change) -> tuple[int, dict | None]:
        """Load the db file fresh, apply `change(db)`, write it, refresh the server's copy."""
        path = self.state.pwddb_path
        if not path:
            return UBUS_STATUS_NOT_SUPPORTED, {"error": "the server has no password database file"}
        db = PasswordDb.load(path)
        result = change(db)
        if result is not None:
            return result
        try:
            db.save(path)
        except OSError as exc:
            log.error("cannot write %s: %s", path, exc)
            return UBUS_STATUS_SYSTEM_ERROR, {"error": f"cannot write {path}: {exc.strerror}"}
        self.state.pwddb = db
        return UBUS_STATUS_OK, None

    def _credentials(self, args: dict, with_password: bool) -> tuple[str, str]:
        name = self._string(args, "name")
        try:
            validate_user_name(name)
        except ValueError as exc:
            raise _BadArgs(str(exc)) from None
        password = ""
        if with_password:
            password = self._string(args, "password")
            try:
                validate_password(password)
            except ValueError as exc:
                raise _BadArgs(str(exc)) from None
        return name, password

    def _m_user_add(self, args: dict) -> tuple[int, dict | None]:
        name, password = self._credentials(args, True)

        def change(db: PasswordDb):
            if name in db:
                return UBUS_STATUS_INVALID_ARGUMENT, {"error": f"user {name!r} already exists"}
            db.set(name, nt_hash(password))
            return None

        status, reply = self._change_users(change)
        if status == UBUS_STATUS_OK:
            log.info("user %r added", name)
        return status, reply

    def _m_user_passwd(self, args: dict) -> tuple[int, dict | None]:
        name, password = self._credentials(args, True)

        def change(db: PasswordDb):
            stored = [n for n in db.names() if n.casefold() == name.casefold()]
            if not stored:
                return UBUS_STATUS_NOT_FOUND, {"error": f"no user {name!r}"}
            db.set(stored[0], nt_hash(password))  # keep the stored spelling
            return None

        status, reply = self._change_users(change)
        if status == UBUS_STATUS_OK:
            log.info("password of user %r changed", name)
        return status, reply

    def _m_user_del(self, args: dict) -> tuple[int, dict | None]:
        name, _ = self._credentials(args, False)

        def change(db: PasswordDb):
            if not db.delete(name):
                return UBUS_STATUS_NOT_FOUND, {"error": f"no user {name!r}"}
            return None

        status, reply = self._change_users(change)
        if status == UBUS_STATUS_OK:
            log.info("user %r deleted", name)
        return status, reply
