"""The command sequence window and credit grants (MS-SMB2 3.3.1.1, 3.3.5.2.3, 3.3.1.2)."""


class CreditWindow:
    """Which MessageIds a client may use next.

    Ids below `low` are used. Ids in [low, high) may be used once each; `used` holds those
    already used out of order. Each grant of N credits moves `high` up by N. The window never
    holds more than `max_credits` unused ids, and never grants fewer than one credit when the
    client would otherwise be left with none (MS-SMB2 3.3.1.2).
    """

    __slots__ = ("low", "high", "used", "max_credits")

    def __init__(self, max_credits: int) -> None:
        self.low = 0
        self.high = 1  # NEGOTIATE's MessageId 0 is allowed before any grant
        self.used: set[int] = set()
        self.max_credits = max_credits

    @property
    def outstanding(self) -> int:
        """Credits the client holds: unused ids in the window."""
        return self.high - self.low - len(self.used)

    def consume(self, msg_id: int, charge: int) -> bool:
        """Use ids msg_id .. msg_id+charge-1; False if any is outside the window or reused."""
        n = charge if charge > 0 else 1
        if msg_id < self.low or msg_id + n > self.high:
            return False
        used = self.used
        if msg_id == self.low and not used:
            self.low = msg_id + n
            return True
        for mid in range(msg_id, msg_id + n):
            if mid in used:
                return False
        used.update(range(msg_id, msg_id + n))
        low = self.low
        while low in used:
            used.discard(low)
            low += 1
        self.low = low
        return True

    def grant(self, requested: int) -> int:
        """Grant up to `requested` credits within the limit; at least one if the client has none."""
        room = self.max_credits - self.outstanding
        granted = min(requested, room)
        if granted <= 0:
            granted = 1 if self.outstanding <= 0 else 0
        self.high += granted
        return granted
