"""Issue 11, idle size: what start-up stopped importing is replaced faithfully."""

import hashlib
import shutil
import uuid

from ksmbd_embedded import cli, server
from ksmbd_embedded.fs import sid


def test_domain_digest_is_the_sha256_it_spells_out():
    assert sid._DOMAIN_DIGEST == hashlib.sha256(b"ksmbd-embedded").digest()


def test_server_guid_is_a_random_uuid4_in_wire_order():
    guids = {server._random_guid() for _ in range(200)}
    assert len(guids) == 200
    for g in guids:
        u = uuid.UUID(bytes_le=g)
        assert len(g) == 16 and u.version == 4 and u.variant == uuid.RFC_4122


def test_random_bits_fill_their_width():
    for n in (16, 24):
        values = [server._random_bits(n) for _ in range(2000)]
        assert all(0 <= v < 1 << n for v in values)
        assert max(values).bit_length() == n


def test_help_width_as_argparse_would_compute(monkeypatch):
    monkeypatch.setenv("COLUMNS", "77")
    assert cli._terminal_columns() == shutil.get_terminal_size().columns == 77
    monkeypatch.delenv("COLUMNS")
    assert cli._terminal_columns() == shutil.get_terminal_size().columns
