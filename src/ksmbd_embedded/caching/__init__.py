"""Caching state of streams: oplocks (MS-FSA 2.1.1.10) and, later, leases.

`oplock.py` is the object store's side (MS-FSA): per-stream Oplock objects, the request,
check-for-break and acknowledgment algorithms. `breaks.py` is the server's bookkeeping of
breaks in flight: acknowledgment timers, counters, and the operations waiting for them.
Nothing here touches sockets or encodes SMB2 messages (handlers/oplock_break.py does).
"""
