"""The spend ledger: one JSON line per billed provider call, in the cache folder.

Why it exists: a build's summary, ``--max-credits`` and ``recraft-build spend`` must
count every call the account pays for, including calls whose picture a check then
rejects and calls of assets (or whole builds) that fail or are interrupted. Lock
entries and cache records only describe pictures that were kept; the ledger describes
money.

Layout: ``<cache folder>/spend/ledger.jsonl``, never in the output tree. It is
append-only: each :class:`SpendEntry` is one line of canonical JSON, written with a
single ``write`` on a descriptor opened with ``O_APPEND`` while holding an exclusive
``flock`` on the file (so lines of concurrent builds sharing the cache never
interleave), then ``fsync``\\ ed before :meth:`FileLedger.append` returns: the executor
appends right after a provider answers, before the picture is checked or used, so
the line survives a crash that follows. A line torn by a crash in the middle of the
write is skipped (and counted) when the ledger is read.

Figures: ``credits`` is what the server said it charged, or, where it did not say
(Replicate), the price table's figure with ``estimated`` true. A call whose answer was
lost or unusable (:attr:`SpendEntry.certain` false) *may* have been billed: it is
counted apart, at the price table's figure. ``resends`` is the number of times the
provider re-sent the paid request after an ambiguous failure; each re-send may have
been billed a second time, so ``at_risk`` (the estimate times ``resends``) is counted
apart too. :func:`summarize` does the arithmetic for the build summary and for
``spend`` alike (one rule).

This module imports no engine code: entries are plain data.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Protocol

from recraft_build.errors import StoreError, UsageError

try:  # POSIX; elsewhere O_APPEND alone keeps lines whole
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "ENTRY_FORMAT",
    "FileLedger",
    "GROUPINGS",
    "LEDGER_DIR",
    "LEDGER_FILE",
    "Ledger",
    "MemoryLedger",
    "SpendEntry",
    "SpendGroup",
    "SpendReport",
    "SpendTotals",
    "parse_since",
    "summarize",
    "utc_now",
]

#: Folder (inside the cache folder) and file of the ledger.
LEDGER_DIR = "spend"
LEDGER_FILE = "ledger.jsonl"
#: The ``v`` of every line (bumped if the shape changes; other versions are skipped).
ENTRY_FORMAT = 1
#: What ``spend --by`` accepts.
GROUPINGS = ("asset", "spec", "day")


def utc_now() -> str:
    """The current time as ISO 8601 in UTC, to the second (``2025-07-30T01:45:30Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SpendEntry:
    """One billed (or possibly billed) provider call.

    ``time`` is ISO 8601 UTC; ``spec`` the absolute path of the spec file; ``asset`` the
    asset the call was made for (None for a custom style's creation, named in
    ``style``); ``operation`` ``generate``, ``create_style`` or a tool operation
    (``remove_background``, ``vectorize``, ``crisp_upscale``...); ``provider`` the
    profile name; ``model`` the model (or Replicate model) when known; ``key`` the
    cache key of what the call made; ``build`` the id of the build that appended it.
    ``pictures`` is how many pictures the call asked for (``n``: Replicate makes one
    prediction per picture).
    """

    time: str
    spec: str
    asset: str | None
    operation: str
    provider: str
    model: str | None
    credits: float
    estimated: bool
    key: str | None
    build: str
    certain: bool = True
    resends: int = 0
    at_risk: float = 0.0
    pictures: int = 1
    style: str | None = None

    @property
    def day(self) -> str:
        """The UTC day of the call (``YYYY-MM-DD``)."""
        return self.time[:10]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": ENTRY_FORMAT,
            "time": self.time,
            "spec": self.spec,
            "asset": self.asset,
            "operation": self.operation,
            "provider": self.provider,
            "model": self.model,
            "credits": self.credits,
            "estimated": self.estimated,
            "key": self.key,
            "build": self.build,
            "certain": self.certain,
            "resends": self.resends,
            "at_risk": self.at_risk,
            "pictures": self.pictures,
        }
        if self.style is not None:
            out["style"] = self.style
        return out

    @classmethod
    def from_json(cls, data: Any) -> "SpendEntry":
        """The entry of one parsed line; ValueError when it is not one of ours."""
        if not isinstance(data, Mapping) or data.get("v") != ENTRY_FORMAT:
            raise ValueError("not a version-1 ledger entry")

        def text(name: str, *, optional: bool = False) -> str | None:
            value = data.get(name)
            if value is None and optional:
                return None
            if not isinstance(value, str):
                raise ValueError(f"{name} is not text")
            return value

        def number(name: str, default: float = 0.0) -> float:
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} is not a non-negative number")
            return float(value)

        time = text("time")
        assert time is not None
        if len(time) < 10:
            raise ValueError("time is not a date")
        return cls(
            time=time,
            spec=text("spec") or "",
            asset=text("asset", optional=True),
            operation=text("operation") or "",
            provider=text("provider") or "",
            model=text("model", optional=True),
            credits=number("credits"),
            estimated=bool(data.get("estimated", False)),
            key=text("key", optional=True),
            build=text("build") or "",
            certain=bool(data.get("certain", True)),
            resends=int(number("resends")),
            at_risk=number("at_risk"),
            pictures=max(1, int(number("pictures", 1))),
            style=text("style", optional=True),
        )


class Ledger(Protocol):
    """Where billed calls are appended. Thread-safe.

    ``append`` returns once the entry is durable (or raises StoreError); ``entries``
    yields every readable entry in the order appended.
    """

    def append(self, entry: SpendEntry) -> None: ...

    def entries(self) -> Iterator[SpendEntry]: ...


class MemoryLedger:
    """A ledger in memory: for tests, and for sessions opened without a cache folder."""

    def __init__(self) -> None:
        self._entries: list[SpendEntry] = []
        self._mutex = threading.Lock()

    def append(self, entry: SpendEntry) -> None:
        with self._mutex:
            self._entries.append(entry)

    def entries(self) -> Iterator[SpendEntry]:
        with self._mutex:
            snapshot = list(self._entries)
        return iter(snapshot)


class FileLedger:
    """The ledger file of a cache folder (see the module docstring).

    ``cache_dir`` is the cache folder; the file is ``cache_dir/spend/ledger.jsonl``.
    Nothing is created until the first :meth:`append`. ``warn`` receives one line when
    :meth:`entries` skips unreadable lines.
    """

    def __init__(self, cache_dir: str | os.PathLike[str], *, warn: Callable[[str], None] | None = None):
        self.path = Path(cache_dir) / LEDGER_DIR / LEDGER_FILE
        self._warn = warn or (lambda message: None)
        self._mutex = threading.Lock()

    def append(self, entry: SpendEntry) -> None:
        line = (json.dumps(entry.to_json(), sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            with self._mutex:
                created = not self.path.parent.exists()
                self.path.parent.mkdir(parents=True, exist_ok=True)
                if created:
                    _fsync_dir(self.path.parent.parent)
                fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    if fcntl is not None:
                        fcntl.flock(fd, fcntl.LOCK_EX)
                    size = os.fstat(fd).st_size
                    # A line torn by a crash has no newline: start on a line of our own.
                    torn = size and hasattr(os, "pread") and os.pread(fd, 1, size - 1) != b"\n"
                    data = b"\n" + line if torn else line
                    written = os.write(fd, data)
                    if written != len(data):  # a full disk: do not leave half a line
                        raise OSError(28, "short write (is the disk full?)")
                    os.fsync(fd)
                finally:
                    os.close(fd)  # also releases the flock
        except OSError as exc:
            raise StoreError(
                f"cannot append to the spend ledger {self.path}: {exc.strerror or exc} (check the cache "
                "folder's permissions and free space)"
            ) from exc

    def entries(self) -> Iterator[SpendEntry]:
        try:
            handle = open(self.path, "rb")
        except FileNotFoundError:
            return iter(())
        except OSError as exc:
            raise StoreError(f"cannot read the spend ledger {self.path}: {exc.strerror or exc}") from exc
        return self._read(handle)

    def _read(self, handle: Any) -> Iterator[SpendEntry]:
        skipped = 0
        with handle:
            for raw in handle:
                if not raw.strip():
                    continue
                try:
                    yield SpendEntry.from_json(json.loads(raw))
                except ValueError:  # json errors are ValueErrors too
                    skipped += 1
        if skipped:
            self._warn(
                f"spend ledger {self.path}: skipped {skipped} unreadable line(s) (a write torn by a crash, "
                "or a newer version's entries)"
            )


def _fsync_dir(path: Path) -> None:
    """Make a new entry of folder ``path`` durable (best effort: not every system can)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- arithmetic ------------------------------------------------------------------------


@dataclass
class SpendTotals:
    """Sums over entries.

    ``credits``: billed calls (``calls`` of them), as reported or estimated;
    ``estimated_credits``: the part of ``credits`` taken from the price table;
    ``possibly_billed_*``: calls whose answer was lost or unusable (may or may not have
    been billed), at the price table's figure; ``possibly_billed_twice_*``: re-sent
    calls (each re-send may have been billed again), estimate times re-sends.
    ``limit_figure`` is what ``--max-credits`` holds against the limit: all three.
    """

    calls: int = 0
    credits: float = 0.0
    estimated_credits: float = 0.0
    possibly_billed_calls: int = 0
    possibly_billed_credits: float = 0.0
    possibly_billed_twice_calls: int = 0
    possibly_billed_twice_credits: float = 0.0

    def add(self, entry: SpendEntry) -> None:
        if entry.certain:
            self.calls += 1
            self.credits += entry.credits
            if entry.estimated:
                self.estimated_credits += entry.credits
        else:
            self.possibly_billed_calls += 1
            self.possibly_billed_credits += entry.credits
        if entry.resends:
            self.possibly_billed_twice_calls += entry.resends
            self.possibly_billed_twice_credits += entry.at_risk

    @classmethod
    def of(cls, entries: Iterable[SpendEntry]) -> "SpendTotals":
        totals = cls()
        for e in entries:
            totals.add(e)
        return totals

    @property
    def limit_figure(self) -> float:
        return self.credits + self.possibly_billed_credits + self.possibly_billed_twice_credits

    def to_json(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "credits": _round(self.credits),
            "estimated_credits": _round(self.estimated_credits),
            "possibly_billed": {"calls": self.possibly_billed_calls, "credits": _round(self.possibly_billed_credits)},
            "possibly_billed_twice": {
                "calls": self.possibly_billed_twice_calls,
                "credits": _round(self.possibly_billed_twice_credits),
            },
        }


def _round(value: float) -> float:
    """Credits are whole or cents of a unit: drop float noise from long sums."""
    return round(value, 6)


@dataclass
class SpendGroup:
    """The totals of one asset, spec or day."""

    name: str
    totals: SpendTotals = field(default_factory=SpendTotals)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **self.totals.to_json()}


@dataclass
class SpendReport:
    """What ``recraft-build spend`` shows: groups sorted by name, and the total.

    ``spec`` is the spec the entries were filtered to (None: every spec sharing the
    cache); ``since`` the first day counted (None: all); ``skipped`` is how many
    entries of other specs or earlier days were left out.
    """

    ledger: str
    by: str
    spec: str | None
    since: str | None
    groups: list[SpendGroup]
    total: SpendTotals
    skipped: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "ledger": self.ledger,
            "by": self.by,
            "spec": self.spec,
            "since": self.since,
            "groups": [g.to_json() for g in self.groups],
            "total": self.total.to_json(),
            "usd": _round(self.total.credits / 1000),
        }


def parse_since(text: str | None) -> str | None:
    """``--since`` as ``YYYY-MM-DD`` (a UTC day); UsageError for anything else."""
    if text is None:
        return None
    try:
        return _dt.date.fromisoformat(text.strip()).isoformat()
    except ValueError as exc:
        raise UsageError(f"--since {text!r}: give a date as YYYY-MM-DD (days are UTC)") from exc


def summarize(
    entries: Iterable[SpendEntry],
    *,
    by: str,
    spec: str | None = None,
    since: str | None = None,
    ledger: str = "",
) -> SpendReport:
    """Totals of ``entries`` grouped ``by`` asset, spec or day (UTC), limited to ``spec``
    (an absolute spec path) and to days from ``since`` (``YYYY-MM-DD``) on.

    Asset groups are named ``folder/spec.yaml:asset`` when entries of several specs are
    counted (two projects may both have a ``hero``); a style's creation is grouped as
    ``style NAME``.
    """
    if by not in GROUPINGS:
        raise UsageError(f"--by {by!r}: choose one of {', '.join(GROUPINGS)}")
    kept: list[SpendEntry] = []
    skipped = 0
    for e in entries:
        if (spec is not None and e.spec != spec) or (since is not None and e.day < since):
            skipped += 1
            continue
        kept.append(e)
    several_specs = len({e.spec for e in kept}) > 1
    groups: dict[str, SpendGroup] = {}
    total = SpendTotals()
    for e in kept:
        if by == "spec":
            name = e.spec
        elif by == "day":
            name = e.day
        else:
            name = e.asset if e.asset is not None else f"style {e.style or '?'}"
            if several_specs:
                spec_path = Path(e.spec)
                name = f"{spec_path.parent.name}/{spec_path.name}:{name}"
        groups.setdefault(name, SpendGroup(name)).totals.add(e)
        total.add(e)
    return SpendReport(
        ledger=ledger,
        by=by,
        spec=spec,
        since=since,
        groups=[groups[k] for k in sorted(groups)],
        total=total,
        skipped=skipped,
    )
