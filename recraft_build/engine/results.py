"""What a build reports: events while it runs, results when it ends, and its budget.

:class:`Reporter` receives the executor's events (the CLI renders them as progress);
:class:`AssetResult` and :class:`BuildResult` are what ``build`` returns;
:class:`Budget` is ``--max-credits``: reserve an estimate before each paid call, then
settle it with what the server charged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

from recraft_build.cache.ledger import SpendTotals
from recraft_build.engine.lockdata import LockedFile
from recraft_build.errors import BudgetError

if TYPE_CHECKING:
    from recraft_build.engine.plan import Plan

__all__ = ["AssetResult", "Budget", "BuildInterrupted", "BuildResult", "NullReporter", "Reporter", "WarningReporter"]


class Reporter(Protocol):
    """Receives build events. The library never prints; the CLI renders these."""

    def notice(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def start(self, plan: "Plan") -> None: ...
    def asset_started(self, name: str, status: str) -> None: ...
    def asset_finished(self, result: "AssetResult") -> None: ...


class NullReporter:
    """A reporter that ignores everything (the library default)."""

    def notice(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass

    def start(self, plan: "Plan") -> None:
        pass

    def asset_started(self, name: str, status: str) -> None:
        pass

    def asset_finished(self, result: "AssetResult") -> None:
        pass


class WarningReporter(NullReporter):
    """Sends notices and warnings to one callback, ignores the rest (library callers)."""

    def __init__(self, warn: Callable[[str], None]):
        self._warn = warn

    def notice(self, message: str) -> None:
        self._warn(message)

    def warning(self, message: str) -> None:
        self._warn(message)


@dataclass
class AssetResult:
    """What happened to one asset. ``status``: generated, restored, up-to-date, failed, skipped."""

    name: str
    status: str
    outputs: list[LockedFile] = field(default_factory=list)
    credits: float = 0.0
    error: str = ""
    reasons: list[str] = field(default_factory=list)
    lock_mismatch: bool = False  # --frozen refused a file that differs from the lock
    #: logical path (the lock's) -> the file written, where they differ (hashed names)
    files: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "status": self.status,
            # "path" is the logical name (the lock's, the manifest's key); "file" the
            # file written under the output folder (content-hashed with hashed_names).
            "outputs": [{"path": o.path, "file": self.files.get(o.path, o.path), "sha256": o.sha256}
                        for o in self.outputs],
            "credits": self.credits,
        }
        if self.error:
            d["error"] = self.error
        if self.reasons:
            d["reasons"] = self.reasons
        return d


@dataclass
class BuildResult:
    """What a build did. ``spend`` sums the paid calls this build appended to the spend
    ledger (failed and skipped assets' calls included); ``credits`` is its billed figure."""

    assets: list[AssetResult]
    output_dir: Path
    interrupted: bool = False
    spend: SpendTotals = field(default_factory=SpendTotals)

    @property
    def failed(self) -> list[AssetResult]:
        """Assets not built: failed, or skipped (after another failure, or interrupted)."""
        return [a for a in self.assets if a.status in ("failed", "skipped")]

    @property
    def credits(self) -> float:
        """Credits this build was billed (as reported, else estimated from the price table)."""
        return self.spend.credits

    def summary(self) -> dict[str, Any]:
        count = lambda s: sum(1 for a in self.assets if a.status == s)  # noqa: E731
        spend = self.spend.to_json()
        return {
            "generated": count("generated"),
            "restored": count("restored"),
            "up_to_date": count("up-to-date"),
            "failed": count("failed"),
            "skipped": count("skipped"),
            # Every paid call of this build (failed assets' included), from the ledger.
            "credits": spend["credits"],
            "calls": spend["calls"],
            "estimated_credits": spend["estimated_credits"],
            "possibly_billed": spend["possibly_billed"],
            "possibly_billed_twice": spend["possibly_billed_twice"],
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "output_dir": str(self.output_dir),
            "assets": [a.to_json() for a in self.assets],
            "summary": self.summary(),
            "interrupted": self.interrupted,
        }


class BuildInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a build; ``result`` is what it finished and what it spent (saved)."""

    def __init__(self, result: BuildResult):
        super().__init__("interrupted")
        self.result = result


class Budget:
    """``--max-credits``: reserve an estimate before each paid call, settle with the truth.

    ``spent`` is what calls were billed (reported, else estimated); ``at_risk`` what
    they may have been billed besides (a lost answer, a re-sent request). Both count
    against the limit, with the reservations of calls in flight. Thread-safe.
    ``limit`` None means no limit (spending is still counted).
    """

    def __init__(self, limit: float | None):
        self.limit = limit
        self.spent = 0.0
        self.at_risk = 0.0
        self._reserved = 0.0
        self._mutex = threading.Lock()

    def reserve(self, amount: float) -> None:
        with self._mutex:
            held = self.spent + self.at_risk + self._reserved + amount
            if self.limit is not None and held > self.limit + 1e-9:
                raise BudgetError(held, self.limit, started=True)
            self._reserved += amount

    def settle(self, reserved: float, actual: float | None, *, at_risk: float = 0.0) -> None:
        """Release ``reserved``; count ``actual`` (None: the reservation itself) as spent
        and ``at_risk`` as possibly billed besides."""
        with self._mutex:
            self._reserved -= reserved
            self.spent += reserved if actual is None else float(actual)
            self.at_risk += float(at_risk)
