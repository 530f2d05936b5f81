"""Session state (MS-SMB2 3.3.1.8 Per Session)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .crypto.encryption import Cipher
    from .crypto.preauth import PreauthHash
    from .crypto.signing import Signer
    from .tree import TreeConnect

# Session.State
IN_PROGRESS = "in-progress"
VALID = "valid"
EXPIRED = "expired"

# SessionFlags of the SESSION_SETUP response (MS-SMB2 2.2.6)
SESSION_FLAG_IS_GUEST = 0x0001
SESSION_FLAG_IS_NULL = 0x0002
SESSION_FLAG_ENCRYPT_DATA = 0x0004


class Session:
    """One authenticated (or authenticating) user on a connection."""

    __slots__ = (
        "session_id", "state", "user", "domain", "is_guest", "is_anonymous",
        "session_key", "signing_required", "encrypt_data", "signer", "encryptor",
        "decryptor", "application_key", "preauth", "auth", "trees", "next_tree_id",
        "dialect", "connection", "created", "idle_since", "bytes_read", "bytes_written",
        "client_encrypts", "first_request_hook",
    )

    def __init__(self, session_id: int, connection: Any, now: float) -> None:
        self.session_id = session_id
        self.state = IN_PROGRESS
        self.user = ""
        self.domain = ""
        self.is_guest = False
        self.is_anonymous = False
        self.session_key: bytes | None = None
        self.signing_required = False
        self.encrypt_data = False
        self.signer: Signer | None = None
        self.encryptor: Cipher | None = None  # server -> client
        self.decryptor: Cipher | None = None  # client -> server
        self.application_key: bytes | None = None
        self.preauth: PreauthHash | None = None
        self.auth: Any = None  # the SPNEGO acceptor while authenticating
        self.trees: dict[int, TreeConnect] = {}
        self.next_tree_id = 1
        self.dialect = 0
        self.connection = connection
        self.created = now
        self.idle_since = now
        self.bytes_read = 0
        self.bytes_written = 0
        # True when the first request after the logon came encrypted although the server did
        # not ask for it (EncryptData false): the server decrypts any message of a session
        # that has keys (MS-SMB2 3.3.5.2.1.1), so a client may encrypt on its own (smbprotocol
        # with require_encryption, smbclient --client-protection=encrypt). Set by
        # first_request.
        self.client_encrypts = False
        self.first_request_hook: Callable[[Session], None] | None = None

    @property
    def flags(self) -> int:
        if self.is_anonymous:
            return SESSION_FLAG_IS_NULL
        if self.is_guest:
            return SESSION_FLAG_IS_GUEST
        return SESSION_FLAG_ENCRYPT_DATA if self.encrypt_data else 0

    def await_first_request(self, hook: Callable[[Session], None]) -> None:
        """Call ``hook(self)`` once: at the session's first request after the logon, when it
        is known whether the client encrypts (``client_encrypts``; connection.py calls
        first_request), or when the session closes before any request."""
        self.first_request_hook = hook

    def first_request(self, encrypted: bool = False) -> None:
        """Run the hook of await_first_request, if one is still waiting."""
        hook = self.first_request_hook
        if hook is None:
            return
        self.first_request_hook = None
        self.client_encrypts = encrypted
        hook(self)

    def add_tree(self, tree: TreeConnect) -> None:
        self.trees[tree.tree_id] = tree

    def __repr__(self) -> str:
        return f"<Session 0x{self.session_id:x} {self.user or '-'} {self.state}>"
