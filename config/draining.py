"""Draining a backlog in bounded batches (the beat tasks' shape)."""

from collections.abc import Callable


def drain(step: Callable[[], int], *, batch_size: int, max_rounds: int) -> int:
    """Call ``step`` (which handles up to ``batch_size`` items and returns how many) until it
    handles a partial batch or ``max_rounds`` have run, so one beat run stays bounded."""
    total = 0
    for _ in range(max_rounds):
        count = step()
        total += count
        if count < batch_size:
            break
    return total
