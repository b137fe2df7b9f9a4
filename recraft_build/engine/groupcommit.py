"""Saving the lock after each finished asset without making workers wait (group commit)."""

from __future__ import annotations

import threading
from typing import Any, Callable

__all__ = ["GroupCommit"]


class GroupCommit:
    """Calls ``write`` (the lock's save) often enough, never concurrently, never blocking.

    ``clock`` is monotonic seconds (passed in so tests can drive it).
    """

    def __init__(self, write: Callable[[], Any], clock: Callable[[], float]):
        self._write = write
        self.clock = clock
        self._lock_mutex = threading.Lock()
        self._last_save = 0.0
        self._saving = False
        self._save_pending = False
        self._save_cost = 0.0

    def save(self, force: bool = False) -> None:
        """Save the lock after a finished asset (group commit).

        After a paid generation the lock is always written; other saves are spaced out
        (re-writing a 10,000-asset lock after each free restore would cost O(N^2)), and
        it is always written at the end. One worker writes at a time and none waits for
        another: a worker that finds a write in progress leaves its change to it, and
        that writer writes once more before it stops. Nothing paid is at risk in
        between: the pictures are in the store before the lock is touched.
        """
        with self._lock_mutex:
            now = self.clock()
            # Free saves are spaced by at least 0.25 s and by 20x what the last write
            # took, so writing a big lock never takes more than ~5% of the build.
            interval = max(0.25, 20 * self._save_cost)
            if not (force or now - self._last_save >= interval):
                return
            self._save_pending = True
            if self._saving:
                return  # the writer in progress will write our change too
            self._saving = True
        try:
            while True:
                with self._lock_mutex:
                    if not self._save_pending:
                        self._saving = False
                        return
                    self._save_pending = False
                    self._last_save = started = self.clock()
                self._write()
                with self._lock_mutex:
                    self._save_cost = max(0.0, self.clock() - started)
        except BaseException:
            with self._lock_mutex:
                self._saving = False
            raise
