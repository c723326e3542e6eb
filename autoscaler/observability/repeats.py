"""Log a failure when it starts, changes or ends, not at every poll that meets it.

An API outage met at every 15 s poll by every target is hundreds of identical lines an hour,
which bury the one that says when it began. ``RepeatedFailure`` decides for one kind of
failure of one target: log the first occurrence and any change of the error, then a summary
every ``summary_seconds`` while it lasts ("still failing, N times"), and once when it ends.
The clock is the caller's, so tests need no sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RepeatedFailure"]

SUMMARY_SECONDS = 300.0


@dataclass
class RepeatedFailure:
    """The state of one kind of failure (e.g. reading one target's scale)."""

    summary_seconds: float = SUMMARY_SECONDS
    error: str | None = None
    """The failure in force; None while things work."""
    since: float = 0.0
    count: int = 0
    """Occurrences since it began."""
    last_logged: float = 0.0

    def failed(self, error: str, now: float) -> str | None:
        """Record one occurrence; returns how to log it: ``"new"`` (it began or changed),
        ``"summary"`` (a periodic reminder) or None (stay quiet)."""
        if error != self.error:
            self.error, self.since, self.count, self.last_logged = error, now, 1, now
            return "new"
        self.count += 1
        if now - self.last_logged >= self.summary_seconds:
            self.last_logged = now
            return "summary"
        return None

    def recovered(self, now: float) -> tuple[str, int, float] | None:
        """Record a success; returns (the error, occurrences, seconds) when a failure ended,
        else None."""
        if self.error is None:
            return None
        ended = (self.error, self.count, now - self.since)
        self.error, self.count = None, 0
        return ended
