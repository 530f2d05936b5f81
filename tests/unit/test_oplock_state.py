"""The MS-FSA oplock state machine (caching/oplock.py), table-driven from the spec's
transitions: 2.1.5.17 (request), 2.1.4.12 (check for a break), 2.1.5.18 (acknowledge),
2.1.4.13 (recompute shared state), and close."""

import pytest

from ksmbd_embedded.caching import oplock as fsa


class Recorder:
    """Stands in for caching.breaks.BreakTable: records what the object store indicates."""

    def __init__(self):
        self.breaks = []  # (open, level, ack_required)
        self.woken = 0

    def indicate_break(self, op, level, ack):
        self.breaks.append((op, level, ack))

    def wake(self, oplock):
        self.woken += 1


class O:
    def __init__(self, name, key=None):
        self.name = name
        self.oplock_key = key

    def __repr__(self):
        return self.name


def fresh():
    rec = Recorder()
    return fsa.Oplock(("dev", 1), rec), rec


READ_DATA = 0x1
WRITE_DATA = 0x2
STAT = fsa.FILE_READ_ATTRIBUTES | fsa.SYNCHRONIZE
OPEN, CREATE, OPEN_IF, SUPERSEDE, OVERWRITE, OVERWRITE_IF = 1, 2, 3, 0, 4, 5


# -- 2.1.5.17 request -------------------------------------------------------------------------

@pytest.mark.parametrize("level, others, locks, status, state", [
    (fsa.LEVEL_BATCH, 0, False, fsa.STATUS_SUCCESS, fsa.BATCH_OPLOCK | fsa.EXCLUSIVE),
    (fsa.LEVEL_ONE, 0, False, fsa.STATUS_SUCCESS, fsa.LEVEL_ONE_OPLOCK | fsa.EXCLUSIVE),
    (fsa.LEVEL_BATCH, 1, False, fsa.STATUS_OPLOCK_NOT_GRANTED, fsa.NO_OPLOCK),  # other opens
    (fsa.LEVEL_ONE, 1, False, fsa.STATUS_OPLOCK_NOT_GRANTED, fsa.NO_OPLOCK),
    (fsa.LEVEL_TWO, 1, False, fsa.STATUS_SUCCESS, fsa.LEVEL_TWO_OPLOCK),
    (fsa.LEVEL_TWO, 0, True, fsa.STATUS_OPLOCK_NOT_GRANTED, fsa.NO_OPLOCK),  # byte locks
    (fsa.LEVEL_GRANULAR, 0, False, fsa.STATUS_OPLOCK_NOT_GRANTED, fsa.NO_OPLOCK),  # leases: later
])
def test_request_from_no_oplock(level, others, locks, status, state):
    ol, _ = fresh()
    a = O("a")
    assert fsa.request(ol, a, level, [O(f"o{i}") for i in range(others)], locks) == status
    assert ol.state == state


def test_exclusive_refused_while_held_or_breaking():
    ol, rec = fresh()
    a, b = O("a"), O("b")
    assert fsa.request(ol, a, fsa.LEVEL_BATCH, [], False) == fsa.STATUS_SUCCESS
    assert fsa.request(ol, b, fsa.LEVEL_BATCH, [], False) == fsa.STATUS_OPLOCK_NOT_GRANTED
    assert fsa.request(ol, b, fsa.LEVEL_TWO, [a], False) == fsa.STATUS_OPLOCK_NOT_GRANTED
    assert fsa.check_break(ol, b, fsa.OPEN, READ_DATA, OPEN)
    assert fsa.request(ol, b, fsa.LEVEL_TWO, [a], False) == fsa.STATUS_OPLOCK_NOT_GRANTED


def test_level_two_shared_by_many():
    ol, _ = fresh()
    opens = [O(str(i)) for i in range(3)]
    for i, op in enumerate(opens):
        assert fsa.request(ol, op, fsa.LEVEL_TWO, opens[:i], False) == fsa.STATUS_SUCCESS
    assert ol.ii_oplocks == opens and ol.state == fsa.LEVEL_TWO_OPLOCK
    assert [fsa.Oplock.level_of(ol, op) for op in opens] == [fsa.LEVEL_TWO] * 3


# -- 2.1.4.12 check for an oplock break ---------------------------------------------------------

EXCL_TABLE = [
    # (held, operation, access, disposition) -> (notified level or None, need to wait, state)
    (fsa.LEVEL_BATCH, fsa.OPEN, READ_DATA, OPEN, fsa.LEVEL_TWO, True, fsa.BREAK_TO_TWO),
    (fsa.LEVEL_BATCH, fsa.OPEN, READ_DATA, OPEN_IF, fsa.LEVEL_TWO, True, fsa.BREAK_TO_TWO),
    (fsa.LEVEL_BATCH, fsa.OPEN, READ_DATA, OVERWRITE_IF, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_BATCH, fsa.OPEN, READ_DATA, SUPERSEDE, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_ONE, fsa.OPEN, WRITE_DATA, OVERWRITE, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_BATCH, fsa.OPEN, STAT, OPEN, None, False, 0),  # attribute-only: nothing
    (fsa.LEVEL_BATCH, fsa.OPEN, STAT, OVERWRITE_IF, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_BATCH, fsa.OPEN_BREAK_H, READ_DATA, OPEN, fsa.LEVEL_TWO, True, fsa.BREAK_TO_TWO),
    (fsa.LEVEL_ONE, fsa.OPEN_BREAK_H, READ_DATA, OPEN, None, False, 0),  # not a handle cache
    (fsa.LEVEL_BATCH, fsa.READ, 0, OPEN, fsa.LEVEL_TWO, True, fsa.BREAK_TO_TWO),
    (fsa.LEVEL_BATCH, fsa.WRITE, 0, OPEN, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_ONE, fsa.SET_EOF, 0, OPEN, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_ONE, fsa.LOCK_CONTROL, 0, OPEN, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_BATCH, fsa.RENAME, 0, OPEN, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_BATCH, fsa.DELETE, 0, OPEN, fsa.LEVEL_NONE, True, fsa.BREAK_TO_NONE),
    (fsa.LEVEL_ONE, fsa.RENAME, 0, OPEN, None, False, 0),
]


@pytest.mark.parametrize("held, operation, access, disp, level, wait, flag", EXCL_TABLE)
def test_break_of_exclusive_by_another_open(held, operation, access, disp, level, wait, flag):
    ol, rec = fresh()
    holder, other = O("holder"), O("other")
    fsa.request(ol, holder, held, [], False)
    before = ol.state
    assert fsa.check_break(ol, other, operation, access, disp) is wait
    if level is None:
        assert rec.breaks == [] and ol.state == before
    else:
        assert rec.breaks == [(holder, level, True)]
        assert ol.state == before | flag and ol.breaking


@pytest.mark.parametrize("operation", [fsa.READ, fsa.WRITE, fsa.SET_EOF, fsa.LOCK_CONTROL])
def test_own_operations_do_not_break_own_exclusive(operation):
    ol, rec = fresh()
    holder = O("holder")
    fsa.request(ol, holder, fsa.LEVEL_BATCH, [], False)
    assert not fsa.check_break(ol, holder, operation)
    assert rec.breaks == []


@pytest.mark.parametrize("operation, access, disp, broken", [
    (fsa.WRITE, 0, OPEN, True),
    (fsa.SET_EOF, 0, OPEN, True),
    (fsa.LOCK_CONTROL, 0, OPEN, True),
    (fsa.FS_CONTROL, 0, OPEN, True),
    (fsa.OPEN, READ_DATA, OVERWRITE_IF, True),
    (fsa.OPEN, READ_DATA, OPEN, False),
    (fsa.READ, 0, OPEN, False),
    (fsa.RENAME, 0, OPEN, False),
])
def test_level_two_broken_to_none_without_ack(operation, access, disp, broken):
    ol, rec = fresh()
    a, b = O("a"), O("b")
    fsa.request(ol, a, fsa.LEVEL_TWO, [], False)
    fsa.request(ol, b, fsa.LEVEL_TWO, [a], False)
    assert fsa.check_break(ol, a, operation, access, disp) is False  # never waits
    if broken:  # every holder, the operation's own Open included (smb2.oplock.batch1)
        assert rec.breaks == [(a, fsa.LEVEL_NONE, False), (b, fsa.LEVEL_NONE, False)]
        assert ol.state == fsa.NO_OPLOCK and ol.ii_oplocks == []
    else:
        assert rec.breaks == [] and ol.state == fsa.LEVEL_TWO_OPLOCK


def test_lease_key_spares_its_own_level_two():
    ol, rec = fresh()
    a, b, c = O("a", key=b"K"), O("b", key=b"K"), O("c")
    fsa.request(ol, a, fsa.LEVEL_TWO, [], False)
    fsa.request(ol, c, fsa.LEVEL_TWO, [a], False)
    fsa.check_break(ol, b, fsa.WRITE)
    assert rec.breaks == [(c, fsa.LEVEL_NONE, False)]
    assert ol.ii_oplocks == [a]


def test_second_operation_while_breaking_waits_without_a_second_notification():
    ol, rec = fresh()
    holder = O("holder")
    fsa.request(ol, holder, fsa.LEVEL_BATCH, [], False)
    assert fsa.check_break(ol, O("x"), fsa.OPEN, READ_DATA, OPEN)
    assert fsa.check_break(ol, O("y"), fsa.OPEN, READ_DATA, OPEN)
    assert len(rec.breaks) == 1


def test_break_to_two_then_to_none():
    """BREAK_TO_TWO then an operation needing none: BREAK_TO_TWO_TO_NONE; an ack to Level II
    ends at none with one more notification (no ack required)."""
    ol, rec = fresh()
    holder = O("holder")
    fsa.request(ol, holder, fsa.LEVEL_BATCH, [], False)
    fsa.check_break(ol, O("x"), fsa.OPEN, READ_DATA, OPEN)
    assert fsa.check_break(ol, O("y"), fsa.WRITE)
    assert ol.state & fsa.BREAK_TO_TWO_TO_NONE and not ol.state & fsa.BREAK_TO_TWO
    status, level = fsa.acknowledge(ol, holder, fsa.LEVEL_TWO)
    assert (status, level) == (fsa.STATUS_SUCCESS, fsa.LEVEL_NONE)
    assert rec.breaks[-1] == (holder, fsa.LEVEL_NONE, False)
    assert ol.state == fsa.NO_OPLOCK and rec.woken == 1


# -- 2.1.5.18 acknowledge ----------------------------------------------------------------------

@pytest.mark.parametrize("break_disp, ack, status, level, state", [
    (OPEN, fsa.LEVEL_TWO, fsa.STATUS_SUCCESS, fsa.LEVEL_TWO, fsa.LEVEL_TWO_OPLOCK),
    (OPEN, fsa.LEVEL_NONE, fsa.STATUS_SUCCESS, fsa.LEVEL_NONE, fsa.NO_OPLOCK),
    (OVERWRITE_IF, fsa.LEVEL_NONE, fsa.STATUS_SUCCESS, fsa.LEVEL_NONE, fsa.NO_OPLOCK),
    (OVERWRITE_IF, fsa.LEVEL_TWO, fsa.STATUS_INVALID_OPLOCK_PROTOCOL, fsa.LEVEL_NONE,
     fsa.NO_OPLOCK),
    (OPEN, fsa.LEVEL_BATCH, fsa.STATUS_INVALID_OPLOCK_PROTOCOL, fsa.LEVEL_NONE, fsa.NO_OPLOCK),
])
def test_acknowledge(break_disp, ack, status, level, state):
    ol, rec = fresh()
    holder = O("holder")
    fsa.request(ol, holder, fsa.LEVEL_BATCH, [], False)
    fsa.check_break(ol, O("x"), fsa.OPEN, READ_DATA, break_disp)
    assert fsa.acknowledge(ol, holder, ack) == (status, level)
    assert ol.state == state and not ol.breaking and rec.woken == 1
    assert fsa.Oplock.level_of(ol, holder) == level


def test_acknowledge_without_break_is_a_protocol_error():
    ol, _ = fresh()
    holder = O("holder")
    fsa.request(ol, holder, fsa.LEVEL_BATCH, [], False)
    assert fsa.acknowledge(ol, holder, fsa.LEVEL_TWO)[0] == fsa.STATUS_INVALID_OPLOCK_PROTOCOL


# -- close -------------------------------------------------------------------------------------

def test_close_of_breaking_holder_ends_the_break():
    ol, rec = fresh()
    holder = O("holder")
    fsa.request(ol, holder, fsa.LEVEL_BATCH, [], False)
    fsa.check_break(ol, O("x"), fsa.OPEN, READ_DATA, OPEN)
    fsa.check_break(ol, holder, fsa.CLOSE)
    assert ol.state == fsa.NO_OPLOCK and ol.exclusive_open is None and rec.woken == 1
    assert ol.idle


def test_close_of_level_two_holder():
    ol, rec = fresh()
    a, b = O("a"), O("b")
    fsa.request(ol, a, fsa.LEVEL_TWO, [], False)
    fsa.request(ol, b, fsa.LEVEL_TWO, [a], False)
    fsa.close(ol, a)
    assert ol.ii_oplocks == [b] and ol.state == fsa.LEVEL_TWO_OPLOCK
    fsa.close(ol, b)
    assert ol.state == fsa.NO_OPLOCK and rec.breaks == []


# -- 2.1.4.13 recompute ------------------------------------------------------------------------

@pytest.mark.parametrize("ii, r, rh, state", [
    (0, 0, 0, fsa.NO_OPLOCK),
    (1, 0, 0, fsa.LEVEL_TWO_OPLOCK),
    (0, 1, 0, fsa.READ_CACHING),
    (1, 1, 0, fsa.READ_CACHING | fsa.LEVEL_TWO_OPLOCK),
    (0, 0, 1, fsa.READ_CACHING | fsa.HANDLE_CACHING),
    (0, 1, 1, fsa.READ_CACHING | fsa.HANDLE_CACHING | fsa.MIXED_R_AND_RH),
])
def test_recompute_shared(ii, r, rh, state):
    ol, _ = fresh()
    ol.ii_oplocks = [O("i")] * ii
    ol.r_oplocks = [O("r")] * r
    ol.rh_oplocks = [O("rh")] * rh
    fsa.recompute_shared(ol)
    assert ol.state == state
