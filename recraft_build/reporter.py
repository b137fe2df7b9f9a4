"""Showing a build to a person: a live progress bar on a terminal, plain lines otherwise.

Reporters receive events from the executor (see :class:`recraft_build.engine.executor.Reporter`)
and write to a stream (stderr by the CLI's choice, so ``--json`` keeps stdout clean).
``NO_COLOR`` is respected (rich honours it; the plain reporter never colours).
"""

from __future__ import annotations

import threading
from typing import IO, Any

from recraft_build.engine.executor import AssetResult
from recraft_build.engine.plan import Plan

__all__ = ["PlainReporter", "RichReporter", "make_reporter"]


class PlainReporter:
    """One line per finished asset that did something; notices and warnings as lines."""

    def __init__(self, stream: IO[str], *, verbose: bool = False):
        self.stream = stream
        self.verbose = verbose
        self._mutex = threading.Lock()
        self.warnings: list[str] = []

    def _line(self, text: str) -> None:
        with self._mutex:
            self.stream.write(text + "\n")
            self.stream.flush()

    def notice(self, message: str) -> None:
        self._line(f"note: {message}")

    def warning(self, message: str) -> None:
        self.warnings.append(message)
        self._line(f"warning: {message}")

    def start(self, plan: Plan) -> None:
        c = plan.counts()
        todo = c["generate"] + c["restore"]
        if todo:
            self._line(
                f"building {todo} asset(s) with provider {plan.provider.name}: "
                f"{c['generate']} to generate, {c['restore']} to restore, {c['up-to-date']} up to date"
            )

    def asset_started(self, name: str, status: str) -> None:
        pass

    def asset_finished(self, result: AssetResult) -> None:
        if result.status == "up-to-date" and not self.verbose:
            return
        if result.status in ("failed", "skipped"):
            self._line(f"  {result.status:<10} {result.name}: {result.error}")
        else:
            cost = f" ({result.credits:g} credits)" if result.credits else ""
            self._line(f"  {result.status:<10} {result.name}{cost}")

    def close(self) -> None:
        pass


class RichReporter(PlainReporter):
    """A live progress bar with counts, for terminals."""

    def __init__(self, stream: IO[str]):
        super().__init__(stream)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(file=stream, stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._task: Any = None
        self._counts = {"generated": 0, "restored": 0, "up-to-date": 0, "failed": 0}

    def _line(self, text: str) -> None:
        with self._mutex:
            self.console.print(text, markup=False, highlight=False)

    def start(self, plan: Plan) -> None:
        self.progress.start()
        self._task = self.progress.add_task("building", total=len(plan.assets), counts=self._fmt())

    def _fmt(self) -> str:
        c = self._counts
        return f"generated {c['generated']} · restored {c['restored']} · up to date {c['up-to-date']} · failed {c['failed']}"

    def asset_finished(self, result: AssetResult) -> None:
        key = "failed" if result.status in ("failed", "skipped") else result.status
        self._counts[key] = self._counts.get(key, 0) + 1
        if result.status in ("failed", "skipped"):
            self._line(f"  {result.status:<10} {result.name}: {result.error}")
        if self._task is not None:
            self.progress.update(self._task, advance=1, counts=self._fmt())

    def close(self) -> None:
        if self._task is not None:
            self.progress.stop()
            self._task = None


def make_reporter(stream: IO[str], *, live: bool) -> PlainReporter:
    """A rich live reporter when ``live`` (a terminal), else plain lines."""
    if live:
        try:
            return RichReporter(stream)
        except ImportError:  # rich is a dependency; plain lines if it is broken
            pass
    return PlainReporter(stream)
