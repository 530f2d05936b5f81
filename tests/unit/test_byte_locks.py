"""The byte-range lock table (fs/byte_locks.py): MS-FSA 2.1.4.10, 2.1.5.8, 2.1.5.9 semantics,
as smbtorture smb2.lock.* expects them of Windows."""

import pytest

from ksmbd_embedded.fs import byte_locks as bl
from ksmbd_embedded.fs.byte_locks import STATUS_INVALID_LOCK_RANGE
from ksmbd_embedded.status import (
    STATUS_FILE_LOCK_CONFLICT, STATUS_LOCK_NOT_GRANTED, STATUS_RANGE_NOT_LOCKED,
    STATUS_SUCCESS, SmbError,
)

OK, NG = STATUS_SUCCESS, STATUS_LOCK_NOT_GRANTED
MAX = 0xFFFFFFFFFFFFFFFF


class Server:
    pass


class Op:
    def __init__(self, key=(1, 2), name="f"):
        self.file_key = key
        self.name = name

    def __repr__(self):
        return f"<Op {self.name}>"


class Work:
    def __init__(self):
        self.done = False
        self.result = None

    def complete(self, status, body):
        if not self.done:
            self.done = True
            self.result = (status, bytes(body))


@pytest.fixture
def env():
    return Server(), Op(name="a"), Op(name="b")


def x(srv, op, off, length):
    return bl.try_lock(srv, op, off, length, True)


def s(srv, op, off, length):
    return bl.try_lock(srv, op, off, length, False)


def test_exclusive_conflicts_with_other_open_and_itself(env):
    srv, a, b = env
    assert x(srv, a, 0, 4) == OK
    assert x(srv, a, 2, 4) == NG  # two exclusive locks never stack, same open included
    assert x(srv, b, 3, 1) == NG
    assert s(srv, b, 3, 1) == NG  # shared on another open's exclusive
    assert s(srv, a, 3, 1) == OK  # shared on the same open's exclusive stacks
    assert x(srv, b, 4, 4) == OK  # adjacent, not overlapping


def test_shared_locks_stack(env):
    srv, a, b = env
    assert s(srv, a, 10, 4) == OK
    assert s(srv, a, 12, 4) == OK
    assert s(srv, b, 11, 4) == OK
    assert x(srv, a, 10, 1) == NG  # exclusive over own shared
    assert x(srv, b, 15, 1) == NG


def test_other_files_do_not_interfere(env):
    srv, a, _ = env
    other = Op(key=(1, 3))
    assert x(srv, a, 0, 10) == OK
    assert x(srv, other, 0, 10) == OK
    assert x(Server(), Op(), 0, 10) == OK  # another server, another table


@pytest.mark.parametrize("first, second, status", [
    ((10, 0), (10, 0), OK), ((10, 0), (9, 1), OK), ((10, 0), (10, 1), OK),
    ((10, 0), (11, 1), OK), ((10, 0), (9, 2), NG), ((10, 0), (10, 2), OK),
    ((10, 0), (9, 3), NG),
    ((9, 1), (10, 0), OK), ((10, 1), (10, 0), OK), ((11, 1), (10, 0), OK),
    ((9, 2), (10, 0), NG), ((10, 2), (10, 0), OK), ((9, 3), (10, 0), NG),
    ((0, 0), (0, 0), OK), ((MAX, 0), (MAX, 0), OK),
])
@pytest.mark.parametrize("same_open", [True, False])
def test_zero_length_ranges(env, first, second, status, same_open):
    srv, a, b = env
    assert x(srv, a, *first) == OK
    assert x(srv, a if same_open else b, *second) == status


def test_invalid_ranges(env):
    srv, a, _ = env
    assert x(srv, a, MAX, MAX) == STATUS_INVALID_LOCK_RANGE
    assert x(srv, a, MAX, 2) == STATUS_INVALID_LOCK_RANGE
    assert x(srv, a, MAX, 1) == OK  # the last byte of the 64-bit space
    assert x(srv, a, MAX, 0) == OK
    assert x(srv, a, 1 << 63, 1) == OK
    assert bl.unlock(srv, a, MAX, 2) == STATUS_INVALID_LOCK_RANGE


def test_unlock_exact_match_same_open(env):
    srv, a, b = env
    assert x(srv, a, 10, 10) == OK
    assert bl.unlock(srv, a, 10, 5) == STATUS_RANGE_NOT_LOCKED
    assert bl.unlock(srv, a, 0, 20) == STATUS_RANGE_NOT_LOCKED
    assert bl.unlock(srv, b, 10, 10) == STATUS_RANGE_NOT_LOCKED
    assert bl.unlock(srv, a, 10, 10) == OK
    assert bl.unlock(srv, a, 10, 10) == STATUS_RANGE_NOT_LOCKED
    assert bl.locks_of(srv, a) == []


def test_unlock_removes_exclusive_before_shared(env):
    srv, a, b = env
    assert s(srv, a, 10, 10) == OK
    assert x(srv, a, 10, 10) == NG
    assert bl.lock(srv, a, [(10, 10, False)]) == OK
    # now: shared, shared; add an exclusive elsewhere-stacked case
    assert bl.unlock(srv, a, 10, 10) == OK
    assert bl.unlock(srv, a, 10, 10) == OK
    assert x(srv, a, 10, 10) == OK
    assert s(srv, a, 10, 10) == OK
    assert bl.unlock(srv, a, 10, 10) == OK  # the exclusive goes first
    assert bl.locks_of(srv, a) == [(10, 10, False)]
    assert s(srv, b, 12, 1) == OK


def test_multiple_locks_all_or_nothing(env):
    srv, a, b = env
    assert x(srv, b, 100, 10) == OK
    assert bl.lock(srv, a, [(0, 10, True), (20, 10, False), (105, 1, False)]) == NG
    assert bl.locks_of(srv, a) == []
    assert bl.lock(srv, a, [(0, 10, True), (20, 10, False)]) == OK
    assert bl.locks_of(srv, a) == [(0, 10, True), (20, 10, False)]


def test_rollback_keeps_earlier_stacked_lock(env):
    srv, a, _ = env
    assert s(srv, a, 0, 10) == OK
    assert bl.lock(srv, a, [(0, 10, False), (5, 1, True)]) == NG
    assert bl.locks_of(srv, a) == [(0, 10, False)]


def test_release_open_drops_its_locks(env):
    srv, a, b = env
    assert s(srv, a, 0, 8) == OK
    assert s(srv, b, 0, 1) == OK
    bl.release_open(srv, a)
    assert bl.locks_of(srv, a) == []
    assert x(srv, Op(name="c"), 7, 1) == OK  # the "NT byte range lock bug" check
    bl.release_open(srv, b)
    bl.release_open(srv, b)  # twice is harmless


def test_table_forgets_files_without_locks(env):
    srv, a, _ = env
    assert x(srv, a, 0, 1) == OK
    assert bl.unlock(srv, a, 0, 1) == OK
    assert bl._tables[srv] == {}


def test_waiters_woken_in_order(env):
    srv, a, b = env
    c = Op(name="c")
    assert x(srv, a, 0, 10) == OK
    w1, w2, w3 = Work(), Work(), Work()
    bl.add_waiter(srv, b, 0, 10, True, w1)
    bl.add_waiter(srv, c, 5, 1, True, w2)   # conflicts with b's once b is granted
    bl.add_waiter(srv, c, 50, 1, True, w3)  # never conflicted: granted at the first wake
    assert bl.unlock(srv, a, 0, 10) == OK
    assert w1.result == (OK, bl.LOCK_RESPONSE)
    assert not w2.done and w3.result[0] == OK
    assert bl.locks_of(srv, b) == [(0, 10, True)]
    assert bl.unlock(srv, b, 0, 10) == OK
    assert w2.result[0] == OK
    assert bl.locks_of(srv, c) == [(50, 1, True), (5, 1, True)]


def test_shared_waiters_all_granted(env):
    srv, a, b = env
    c = Op(name="c")
    assert x(srv, a, 0, 10) == OK
    w1, w2 = Work(), Work()
    bl.add_waiter(srv, b, 0, 10, False, w1)
    bl.add_waiter(srv, c, 0, 10, False, w2)
    bl.release_open(srv, a)
    assert w1.result[0] == OK and w2.result[0] == OK


def test_cancelled_waiter_is_not_granted(env):
    srv, a, b = env
    assert x(srv, a, 0, 10) == OK
    work = Work()
    waiter = bl.add_waiter(srv, b, 0, 10, True, work)
    bl.remove_waiter(srv, waiter)
    bl.remove_waiter(srv, waiter)
    assert bl.unlock(srv, a, 0, 10) == OK
    assert not work.done and bl.locks_of(srv, b) == []


def test_close_answers_own_waiters_range_not_locked(env):
    srv, a, b = env
    assert x(srv, a, 0, 10) == OK
    work = Work()
    bl.add_waiter(srv, b, 0, 10, True, work)
    bl.release_open(srv, b)
    assert work.result[0] == STATUS_RANGE_NOT_LOCKED
    assert bl.unlock(srv, a, 0, 10) == OK
    assert bl.locks_of(srv, b) == [] and bl._tables[srv] == {}


def test_check_io_exclusive(env):
    srv, a, b = env
    assert x(srv, a, 0, 100) == OK
    bl.check_io(srv, a, 50, 50, write=False)
    bl.check_io(srv, a, 50, 50, write=True)  # the owner reads and writes
    for write in (False, True):
        with pytest.raises(SmbError) as exc:
            bl.check_io(srv, b, 99, 10, write=write)
        assert exc.value.status == STATUS_FILE_LOCK_CONFLICT
    bl.check_io(srv, b, 100, 10, write=True)  # just past the lock
    bl.check_io(srv, b, 50, 0, write=True)  # zero-length I/O


def test_check_io_shared(env):
    srv, a, b = env
    assert s(srv, a, 0, 100) == OK
    bl.check_io(srv, a, 0, 10, write=False)
    bl.check_io(srv, b, 0, 10, write=False)
    for op in (a, b):  # a shared lock blocks writes, the owner's included (smb2.lock.rw-shared)
        with pytest.raises(SmbError) as exc:
            bl.check_io(srv, op, 0, 10, write=True)
        assert exc.value.status == STATUS_FILE_LOCK_CONFLICT


def test_check_io_zero_length_lock(env):
    """MS-FSA 2.1.4.10: a zero-length lock at O is "inside" an I/O range holding bytes on both
    sides of O, and nowhere else."""
    srv, a, b = env
    assert x(srv, a, 10, 0) == OK
    with pytest.raises(SmbError):
        bl.check_io(srv, b, 0, 100, write=False)
    bl.check_io(srv, b, 10, 10, write=True)
    bl.check_io(srv, b, 0, 10, write=True)
    bl.check_io(srv, b, 10, 0, write=True)  # zero-byte read on the lock (smb2.lock.zerobyteread)
    bl.check_io(Server(), b, 0, 100, write=True)  # no table at all
