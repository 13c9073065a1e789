"""Follow an ACI container's log without losing lines.

The Azure provider's operator polls the whole log tail every second and prints what is new by
looking for the last line it printed, searching from the end. dbt repeats lines within a second
(its blank "12:00:01  " separators), so when a poll happened to end on such a line, the next
poll resumed after its *last* repeat and silently dropped everything in between: for a failed
model, the error message. The operator then deletes the group, so those lines were gone.

This follower remembers the previous tail instead of one line, and prints what follows the
longest overlap of the two tails: exact while fewer than a tail's worth of lines (1,000) arrive
between two polls, one second apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def unseen_lines(previous: list[str], current: list[str]) -> list[str]:
    """The lines of `current` not already in `previous`, both tails of the same growing log."""
    if previous[: len(current)] == current:  # nothing new (or a shorter answer than before)
        return []
    if previous and not previous[-1].endswith("\n"):
        # A line still being written when the last poll read it: print it again once it is whole.
        previous = previous[:-1]
    for start, line in enumerate(previous):  # longest overlap first
        overlap = len(previous) - start
        if line == current[0] and current[:overlap] == previous[start:]:
            return current[overlap:]
    return current


def follow_whole_log(operator: Any) -> None:
    """Replace the operator's `_log_last` (used for the log and the events) with this follower.

    The provider threads `_log_last`'s return value back into its next call, so returning the whole
    tail rather than its last line needs no other change.
    """
    if not callable(getattr(operator, "_log_last", None)):
        raise TypeError(f"{type(operator).__name__} has no _log_last: the ACI log follower needs updating")

    def log_unseen(answer: Sequence[str] | None, printed: Sequence[str] | None) -> list[str]:
        current, previous = list(answer or []), list(printed or [])
        unseen = unseen_lines(previous, current)
        for line in unseen:
            operator.log.info(line.rstrip())
        # A shorter or empty answer says nothing about what was printed already: keep the longer tail.
        return current if unseen or len(current) >= len(previous) else previous

    operator._log_last = log_unseen
