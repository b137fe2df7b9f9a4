"""Showing a command's result: human text, or one JSON object, behind one interface.

The command line calls the library, then hands the result to a renderer; the library
never prints. :class:`HumanRenderer` writes text (results on stdout, the build summary
and errors on stderr); :class:`JsonRenderer` writes exactly one JSON object on stdout
at the end and the same human notes on stderr, so scripts read stdout and people read
stderr. Progress while a build runs is the reporters' job (:mod:`recraft_build.reporter`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import IO, Any

from recraft_build.errors import RecraftBuildError, SpecError

__all__ = ["HumanRenderer", "JsonRenderer", "Renderer", "make_renderer", "MAX_PROBLEMS_SHOWN"]

#: A hostile spec can hold hundreds of thousands of problems: show this many.
MAX_PROBLEMS_SHOWN = 100


def _short_prompt(prompt: str, width: int = 60) -> str:
    line = prompt.strip().splitlines()[0] if prompt.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _credits(value: float) -> str:
    return f"{value:g} credits"


class Renderer:
    """The human renderer's text, shared by both (stderr notes are the same with --json)."""

    def __init__(self, stdout: IO[str], stderr: IO[str]):
        self.stdout = stdout
        self.stderr = stderr

    # Each method receives one command's result (or error).
    def validated(self, spec: Any) -> None:
        self.stdout.write(f"{spec.path}: OK, {len(spec.assets)} asset(s)\n")

    def plan(self, plan: Any, *, status_mode: bool = False) -> None:
        out = self.stdout
        for a in plan.assets:
            req = a.asset.request
            style = req.style_ref or req.style or "-"
            if req.substyle:
                style += f"/{req.substyle}"
            size = req.size or req.aspect_ratio or "-"
            cost = _credits(a.credits) if a.credits else "-"
            label = a.status
            if status_mode:
                label = "edited" if a.hand_edited else ("ok" if a.status == "up-to-date" else "stale")
            out.write(
                f"{label:<10} {a.name:<28} {req.model} {style} {size} x{req.n}  {cost:>12}  {_short_prompt(req.prompt)}\n"
            )
            for r in a.reasons + ([a.hand_edited] if a.hand_edited else []):
                out.write(f"{'':<10}   - {r}\n")
            if a.status == "up-to-date":
                continue
            for s in a.steps:
                if s.status == "run":
                    out.write(f"{'':<10}   step {s.name} ({_engine(s)}): will run\n")
            for o in a.outputs:
                for s in o.steps:
                    if s.status == "run":
                        out.write(f"{'':<10}   step {s.name} for {o.spec.path} ({_engine(s)}): will run\n")
        for name, cost in sorted(getattr(plan, "styles", {}).items()):
            out.write(f"{'create':<10} style {name:<22} (custom style, made once){_credits(cost) if cost else '-':>14}\n")
        for at in getattr(plan, "atlases", ()):
            label = ("ok" if at.status == "up-to-date" else "stale") if status_mode else at.status
            out.write(f"{label:<10} atlas {at.spec.path}{': ' + at.reason if at.reason else ''}\n")
        c = plan.counts()
        credits = plan.credits
        out.write(
            f"{c['generate']} to generate, {c['restore']} to restore, {c['up-to-date']} up to date; "
            f"estimated cost {_credits(credits)} (${credits / 1000:.2f}) with provider {plan.provider.name}"
        )
        real = plan.real_estimate()
        if real is not None:
            out.write(f"; with a real provider about {_credits(real)} (${real / 1000:.2f})")
        out.write("\n")

    def build(self, result: Any) -> None:
        s = result.summary()
        parts = [
            f"generated {s['generated']}",
            f"restored {s['restored']}",
            f"up to date {s['up_to_date']}",
            f"failed {s['failed']}",
        ]
        if s.get("skipped"):
            parts.append(f"not built {s['skipped']}")
        self.stderr.write(f"{', '.join(parts)}; {_spent(result.spend)}; output in {result.output_dir}\n")

    def spend(self, report: Any) -> None:
        """``recraft-build spend``: one line per group, a total, and what is not exact."""
        out = self.stdout
        scope = f"spec {report.spec}" if report.spec else "every spec sharing this cache"
        since = f", since {report.since}" if report.since else ""
        out.write(f"spend ledger {report.ledger}: {scope}{since}\n")
        width = max([len(report.by)] + [len(g.name) for g in report.groups])
        out.write(f"{report.by:<{width}}  {'calls':>6}  {'credits':>12}\n")
        for g in report.groups:
            out.write(f"{g.name:<{width}}  {g.totals.calls:>6}  {_figure(g.totals):>12}\n")
        t = report.total
        out.write(f"{'total':<{width}}  {t.calls:>6}  {_figure(t):>12}  (${t.credits / 1000:.2f})\n")
        if t.estimated_credits:
            out.write(f"* includes {_credits(t.estimated_credits)} estimated from the price table "
                      "(the server did not say what it charged)\n")
        risk = _risk(t)
        if risk:
            out.write(f"{risk}\n")
        if not report.groups:
            out.write("no paid calls recorded" + (" for this spec" if report.spec else "") + since + "\n")

    def clean(self, res: Any) -> None:
        verb = "would remove" if res.dry_run else "removed"
        for rel in res.removed:
            self.stdout.write(f"{verb} {rel}\n")
        for k in res.kept:
            self.stdout.write(f"kept {k.path}: {k.reason}\n")
        kept = f"; kept {len(res.kept)} (reasons above)" if res.kept else ""
        self.stdout.write(f"{verb} {len(res.removed)} file(s) from {res.output_dir}{kept}\n")

    def record(self, obj: Any) -> None:
        """A dataclass or mapping of figures (``cache info``, ``cache gc``...)."""
        data = dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(obj)
        for k, v in data.items():
            if isinstance(v, (list, tuple)):
                self.stdout.write(f"{k}: {len(v)}\n")
                for item in v:
                    self.stdout.write(f"  {item}\n")
            else:
                self.stdout.write(f"{k}: {v}\n")

    def gc(self, report: Any) -> None:
        """What ``cache gc`` removed (or would remove), and the locks that kept the rest."""
        out = self.stdout
        verb = "would remove" if report.dry_run else "removed"
        out.write(
            f"{verb} {report.entries} cache entries ({report.blobs} picture(s), {report.records} "
            f"record(s)), {bytes_text(report.bytes)}; kept {report.kept_blobs} picture(s) and "
            f"{report.kept_records} record(s) pinned by {len(report.roots)} lock file(s)\n"
        )
        for lock in report.roots:
            out.write(f"  kept: {lock}\n")
        for lock in report.pruned_roots:
            out.write(f"  {'would forget' if report.dry_run else 'forgot'} the root {lock} (the lock file is gone)\n")
        if report.dry_run:
            out.write("dry run: nothing was removed\n")

    def text(self, text: str, data: Any = None) -> None:
        """Text for people (``diff``'s Markdown, a page's address); ``data`` for JSON."""
        self.stdout.write(text if text.endswith("\n") else text + "\n")

    def spec_error(self, exc: SpecError) -> None:
        problems = exc.problems
        for p in problems[:MAX_PROBLEMS_SHOWN]:
            self.stderr.write(f"{p}\n")
        if len(problems) > MAX_PROBLEMS_SHOWN:
            self.stderr.write(f"... and {len(problems) - MAX_PROBLEMS_SHOWN:,} more\n")
        self.stderr.write(f"{len(problems)} problem(s) found; nothing was built.\n")

    def error(self, exc: RecraftBuildError) -> None:
        self.stderr.write(f"error: {exc}\n")

    def finish(self) -> None:
        """Called once at the end of the command."""


def bytes_text(count: int) -> str:
    """``1234567`` -> ``"1234567 bytes (1.2 MB)"``."""
    size, unit = float(count), "bytes"
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            break
        size /= 1000
    return f"{count} bytes" if unit == "bytes" else f"{count} bytes ({size:.1f} {unit})"


def _spent(totals: Any) -> str:
    """A build's spend: billed credits, the estimated part, and what may be billed besides."""
    text = f"{_credits(totals.credits)} spent"
    if totals.estimated_credits:
        text += f" ({totals.estimated_credits:g} of them estimated from the price table)"
    risk = _risk(totals)
    return f"{text}; {risk}" if risk else text


def _risk(totals: Any) -> str:
    """What may have been billed besides the exact figure ("" when nothing)."""
    parts = []
    if totals.possibly_billed_calls:
        parts.append(
            f"possibly billed: {totals.possibly_billed_calls} call(s) whose answer was lost, "
            f"at most {_credits(totals.possibly_billed_credits)}"
        )
    if totals.possibly_billed_twice_calls:
        parts.append(
            f"possibly billed twice: {totals.possibly_billed_twice_calls} call(s), "
            f"at most {_credits(totals.possibly_billed_twice_credits)}"
        )
    return "; ".join(parts)


def _figure(totals: Any) -> str:
    """Credits of a group, marked ``*`` when part of it is estimated."""
    return f"{totals.credits:g}" + ("*" if totals.estimated_credits else "")


def _engine(step: Any) -> str:
    if step.operation:
        if getattr(step, "shared", False):
            return "provider, the same call as above: paid once"
        return f"provider, {_credits(step.credits)}"
    return "local"


class HumanRenderer(Renderer):
    """Text for people."""


class JsonRenderer(Renderer):
    """Exactly one JSON object on stdout, written by :meth:`finish`; notes on stderr."""

    def __init__(self, stdout: IO[str], stderr: IO[str]):
        super().__init__(stdout, stderr)
        self._data: Any = None

    def _set(self, data: Any) -> None:
        self._data = data

    def validated(self, spec: Any) -> None:
        self._set({"spec": str(spec.path), "valid": True, "assets": [a.name for a in spec.assets]})

    def plan(self, plan: Any, *, status_mode: bool = False) -> None:
        self._set(plan.to_json())

    def build(self, result: Any) -> None:
        super().build(result)  # the summary line stays on stderr for people
        self._set(result.to_json())

    def clean(self, res: Any) -> None:
        self._set(res.to_json())

    def spend(self, report: Any) -> None:
        self._set(report.to_json())

    def record(self, obj: Any) -> None:
        self._set(dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else dict(obj))

    def gc(self, report: Any) -> None:
        self.record(report)

    def text(self, text: str, data: Any = None) -> None:
        self._set(data if data is not None else {"text": text})

    def spec_error(self, exc: SpecError) -> None:
        super().spec_error(exc)
        self._set(
            {
                "valid": False,
                "problem_count": len(exc.problems),
                "problems": [
                    {"file": p.file, "line": p.line, "col": p.col, "path": p.path, "message": p.message, "hint": p.hint}
                    for p in exc.problems
                ],
            }
        )

    def error(self, exc: RecraftBuildError) -> None:
        super().error(exc)
        self._set({"error": str(exc), "exit_code": exc.exit_code})

    def finish(self) -> None:
        if self._data is not None:
            self.stdout.write(json.dumps(self._data, indent=2, sort_keys=True, default=str) + "\n")
            self._data = None


def make_renderer(as_json: bool, stdout: IO[str], stderr: IO[str]) -> Renderer:
    return JsonRenderer(stdout, stderr) if as_json else HumanRenderer(stdout, stderr)

