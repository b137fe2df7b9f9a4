"""The command line: parse arguments, call one library function, render, pick the exit code.

Exit codes (the contract scripts and CI rely on): 0 all good; 1 one or more assets
failed; 2 usage error; 3 the spec or plan is wrong (found before any API call);
130 interrupted. With ``--json`` exactly one JSON object goes to stdout at the end and
human output goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import IO, Any, Sequence

from recraft_build import __version__
from recraft_build.errors import RecraftBuildError, SpecError, UsageError
from recraft_build.render import Renderer, make_renderer

# The library (`api`, and through it the spec loader, the cache and the providers) is
# imported when a command runs, not with this module: `--help` stays quick, and a
# no-op `build` or `status` is answered from its stamp (engine.fastpath) first.

__all__ = ["main"]

class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (exit 2 with our message) instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _common(p: argparse.ArgumentParser, *, json_flag: bool = True) -> None:
    p.add_argument("-f", "--file", dest="spec", metavar="SPEC", help="the spec (default: assets.yaml)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")


def _cache(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache folder (default: $RECRAFT_BUILD_CACHE, else ~/.cache/recraft-build)",
    )


def _remote(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--remote-cache",
        metavar="URL",
        help="shared cache: an http(s):// server speaking Bazel's HTTP cache protocol, or "
        "s3://BUCKET/PREFIX (default: $RECRAFT_BUILD_REMOTE_CACHE)",
    )
    p.add_argument(
        "--remote-cache-mode",
        choices=["read", "read-write"],
        help="read: never upload (default: $RECRAFT_BUILD_REMOTE_CACHE_MODE, else read-write)",
    )


def _provider(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--provider",
        default="auto",
        metavar="NAME",
        help="auto (default), recraft, replicate, placeholder, or a profile from the spec",
    )


def _shard(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="only part K of N of the targets, split by a stable hash of their names (one CI job per part)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recraft-build",
        description="Build image assets from a YAML spec with the Recraft API, incrementally.",
    )
    parser.add_argument("--version", action="version", version=f"recraft-build {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("validate", help="check the spec; report every problem")
    _common(p)
    p.add_argument(
        "--provider", default=None, metavar="NAME",
        help="also check what this provider cannot take (e.g. replicate: no negative_prompt)",
    )

    p = sub.add_parser("plan", help="what a build would do, and what it would cost")
    _common(p)
    p.add_argument("targets", nargs="*", metavar="TARGET", help="asset names or globs (default: all)")
    p.add_argument("-o", "--output-dir", metavar="OUT")
    p.add_argument("--force", action="store_true", help="plan new pictures for the targets")
    _shard(p)
    _provider(p)
    _cache(p)
    _remote(p)

    p = sub.add_parser("build", help="build the targets (default: all assets)")
    _common(p)
    p.add_argument("targets", nargs="*", metavar="TARGET", help="asset names or globs (default: all)")
    p.add_argument("-o", "--output-dir", metavar="OUT", help="output folder (default: the spec's output_dir, else build/)")
    p.add_argument("-j", "--jobs", type=int, default=8, metavar="N", help="generations under way at once (default 8)")
    _provider(p)
    p.add_argument("--keep-going", action="store_true", help="build the other assets when one fails")
    p.add_argument("--force", action="store_true", help="make new pictures for the targets (paid)")
    p.add_argument("--frozen", action="store_true", help="never make a new picture: fail instead (for CI)")
    p.add_argument("--max-credits", type=float, metavar="N", help="refuse to spend more than N credits (1,000 credits = 1 USD)")
    _shard(p)
    _cache(p)
    _remote(p)

    p = sub.add_parser("status", help="each asset: up to date or stale, and why")
    _common(p)
    p.add_argument("-o", "--output-dir", metavar="OUT")
    _provider(p)
    _cache(p)

    p = sub.add_parser("clean", help="remove outputs the spec no longer names")
    _common(p)
    p.add_argument("-o", "--output-dir", metavar="OUT")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed")

    p = sub.add_parser("cache", help="the local cache: info, gc, verify")
    p.add_argument("action", choices=["info", "gc", "verify"])
    p.add_argument(
        "locks", nargs="*", metavar="LOCK",
        help="gc: more lock files whose pictures to keep (besides every lock builds registered, and the spec's)",
    )
    p.add_argument("--dry-run", action="store_true", help="gc: say what would be removed, remove nothing")
    _common(p)
    _cache(p)

    p = sub.add_parser("spend", help="what paid calls cost, from the cache's spend ledger")
    _common(p)
    p.add_argument(
        "--by", choices=["asset", "spec", "day"], default=None,
        help="group by asset (default with -f), spec (default without) or day (UTC)",
    )
    p.add_argument("--since", metavar="DATE", help="only calls on or after DATE (YYYY-MM-DD, UTC)")
    _cache(p)
    _add_review_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the command line; return the exit code.

    A ``build`` or ``status`` with nothing to do is answered from its stamp without
    loading anything (:mod:`recraft_build.engine.fastpath`); any doubt, and every
    other command, takes the full path.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    from recraft_build.engine.fastpath import answer

    code = answer(sys.argv[1:] if argv is None else list(argv), stdout, stderr)
    if code is not None:
        return code
    return run(argv, stdout=stdout, stderr=stderr)


def run(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """The full path of :func:`main` (no stamp consulted); return the exit code."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    renderer: Renderer = make_renderer(False, stdout, stderr)
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help(stderr)
            return 2
        renderer = make_renderer(getattr(args, "json", False), stdout, stderr)
        return _dispatch(args, renderer)
    except SpecError as exc:
        renderer.spec_error(exc)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        result = getattr(exc, "result", None)
        if result is not None:
            renderer.build(result)  # what the interrupted build finished and spent
        stderr.write("interrupted; finished assets are saved in the lock and cache.\n")
        stdout.flush()
        stderr.flush()
        if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
            # A second Ctrl-C left worker threads in calls: do not wait for them.
            os._exit(130)
        return 130
    except RecraftBuildError as exc:
        renderer.error(exc)
        return exc.exit_code
    finally:
        renderer.finish()


def _dispatch(args: argparse.Namespace, out: Renderer) -> int:
    cmd = args.command
    stderr = out.stderr
    as_json = getattr(args, "json", False)
    live = stderr.isatty() and not as_json and os.environ.get("TERM") != "dumb"
    from recraft_build import api

    if cmd == "validate":
        out.validated(api.validate(args.spec, provider=args.provider))
        return 0
    from recraft_build.reporter import PlainReporter, make_reporter

    if cmd in ("plan", "status"):
        # `status` is the plan of every asset, shown as up to date or stale with reasons.
        stamp = _noop_stamp(cmd, args) if cmd == "status" else None
        common = dict(
            provider=args.provider,
            cache_dir=args.cache_dir,
            output_dir=args.output_dir,
            reporter=make_reporter(stderr, live=False),
            remote_cache=getattr(args, "remote_cache", None),
            remote_mode=getattr(args, "remote_cache_mode", None),
            shard=getattr(args, "shard", None),
            stamp=stamp,
        )
        if cmd == "status":
            the_plan = api.status(args.spec, **common)
        else:
            the_plan = api.plan(args.spec, args.targets, force=args.force, **common)
        if stamp is None or not stamp.certified:
            out.plan(the_plan, status_mode=(cmd == "status"))
            return 0
        # Printed through the same renderer as always, and remembered for the fast path.
        kind = stamp.request.memo_kind
        memo = _render(kind, lambda r: r.plan(the_plan, status_mode=True))
        stderr.write(memo[1])
        out.stdout.write(memo[0])
        stamp.commit({kind: memo})
        return 0
    if cmd == "build":
        if args.jobs < 1:
            raise UsageError("-j/--jobs must be at least 1")
        reporter = make_reporter(stderr, live=live)
        stamp = _noop_stamp(cmd, args)
        if stamp is not None:
            stamp.invalidate()
        try:
            result = api.build(
                args.spec,
                args.targets,
                shard=args.shard,
                stamp=stamp,
                output_dir=args.output_dir,
                cache_dir=args.cache_dir,
                provider=args.provider,
                jobs=args.jobs,
                keep_going=args.keep_going,
                force=args.force,
                frozen=args.frozen,
                max_credits=args.max_credits,
                reporter=reporter,
                remote_cache=args.remote_cache,
                remote_mode=args.remote_cache_mode,
            )
        finally:
            reporter.close()
        # Each failure was shown once, by the reporter, as it happened.
        out.build(result)
        if stamp is not None and stamp.certified:
            _remember_build(stamp)
        return 1 if result.failed else 0
    if cmd == "clean":
        out.clean(api.clean(args.spec, output_dir=args.output_dir, dry_run=args.dry_run))
        return 0
    if cmd == "cache":
        return _cache_command(args, out, PlainReporter(stderr))
    if cmd == "spend":
        out.spend(
            api.spend(args.spec, by=args.by, since=args.since, cache_dir=args.cache_dir, reporter=PlainReporter(stderr))
        )
        return 0
    if cmd in _REVIEW_COMMANDS:
        return _dispatch_review(args, out)
    raise UsageError(f"unknown command {cmd}")  # pragma: no cover


def _noop_stamp(command: str, args: argparse.Namespace) -> Any:
    """The stamp this command may leave for the no-op fast path (None for --force)."""
    from recraft_build.engine.stamp import NoopStamp

    return NoopStamp.for_command(command, args)


def _render(kind: str, show: Any) -> tuple[str, str]:
    """``(stdout, stderr)`` of ``show(renderer)`` with the renderer of ``kind``'s form."""
    import io

    out, err = io.StringIO(), io.StringIO()
    renderer = make_renderer(kind.endswith("-json"), out, err)
    show(renderer)
    renderer.finish()
    return out.getvalue(), err.getvalue()


def _remember_build(stamp: Any) -> None:
    """Write the stamp with what a no-op `build` (both forms) and, when this build
    covered what `status` does, `status` print: the fast path replays them."""
    noop, plan = stamp.noop_result, stamp.plan
    req = stamp.request
    # The JSON form is rendered only when asked for (tens of MB for a big spec; its first
    # fast answer then waits for one full `build --json`).
    kinds = ("build", "build-json") if req.as_json else ("build",)
    memos = {kind: _render(kind, lambda r: r.build(noop)) for kind in kinds}
    if not (req.targets or req.shard or req.remote_cache or req.remote_mode):
        memos["status"] = _render("status", lambda r: r.plan(plan, status_mode=True))
    stamp.commit(memos)


def _cache_command(args: argparse.Namespace, out: Renderer, warnings: Any) -> int:
    from recraft_build import api

    if args.action == "info":
        out.record(api.cache_info(args.cache_dir, reporter=warnings))
        return 0
    if args.action == "verify":
        res = api.cache_verify(args.cache_dir, reporter=warnings)
        out.record(res)
        return 1 if getattr(res, "corrupt", []) else 0
    locks = list(args.locks)
    if not locks and (args.spec or os.path.exists(api.DEFAULT_SPEC)):
        # The spec's own lock is a root too, registered or not (a project built before
        # builds registered their locks).
        lock_path = api.load(args.spec).lock_path
        if lock_path.exists():
            locks = [str(lock_path)]
    out.gc(api.cache_gc(locks, args.cache_dir, reporter=warnings, dry_run=args.dry_run))
    return 0


# -- candidates, review and the lock diff (issue 6) ---------------------------------------------
_REVIEW_COMMANDS = ("pick", "reroll", "gallery", "review", "diff")
_GALLERY_DIR_HELP = "where the gallery's page and pictures go (default .recraft-build/gallery beside the spec)"


def _add_review_commands(sub: Any) -> None:
    """``pick``, ``reroll``, ``gallery``, ``review`` and ``diff``."""
    p = sub.add_parser("pick", help="use another candidate of an asset (free: rebuilt from the cache)")
    _common(p)
    p.add_argument("asset", metavar="ASSET", help="the asset's name")
    p.add_argument("index", metavar="INDEX", type=int, help="the candidate, counted from 0")
    p.add_argument("-o", "--output-dir", metavar="OUT")
    _provider(p)
    p.add_argument(
        "--max-credits", type=float, default=0.0, metavar="N",
        help="allow paid provider steps up to N credits (default 0: refuse)",
    )
    _cache(p)

    p = sub.add_parser("reroll", help="ask for new candidates for an asset (paid)")
    _common(p)
    p.add_argument("asset", metavar="ASSET", help="the asset's name")
    p.add_argument("-o", "--output-dir", metavar="OUT")
    _provider(p)
    p.add_argument("--max-credits", type=float, metavar="N", help="refuse to spend more than N credits (1,000 credits = 1 USD)")
    _cache(p)

    p = sub.add_parser("gallery", help="write a static HTML page of every asset and its candidates")
    _common(p)
    p.add_argument("-o", "--output-dir", metavar="OUT")
    p.add_argument("--gallery-dir", metavar="DIR", help=_GALLERY_DIR_HELP)
    p.add_argument("--base", default="HEAD", metavar="REV", help="compare with the lock at this git revision (default HEAD)")
    _cache(p)

    p = sub.add_parser("review", help="serve the gallery on 127.0.0.1 to pick and reroll with clicks")
    _common(p, json_flag=False)
    p.add_argument("-o", "--output-dir", metavar="OUT")
    p.add_argument("--gallery-dir", metavar="DIR", help=_GALLERY_DIR_HELP)
    p.add_argument("--port", type=int, default=0, metavar="PORT", help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--base", default="HEAD", metavar="REV", help="compare with the lock at this git revision (default HEAD)")
    _provider(p)
    p.add_argument(
        "--max-credits", type=float, metavar="N",
        help="cap what one reroll, or the provider steps of one pick, may spend (default: picks never pay)",
    )
    _cache(p)

    p = sub.add_parser("diff", help="what changed in the lock between two git revisions, as Markdown")
    _common(p)
    p.add_argument("--base", default="HEAD", metavar="REV", help="the older side (default HEAD)")
    p.add_argument("--head", default=None, metavar="REV", help="the newer side (default: the lock in the working tree)")


def _dispatch_review(args: argparse.Namespace, out: Renderer) -> int:
    cmd = args.command
    stdout, stderr = out.stdout, out.stderr
    as_json = getattr(args, "json", False)
    if cmd == "diff":
        from recraft_build.review import lockdiff

        if as_json:
            out.text("", lockdiff.compute(args.spec, args.base, args.head).to_json())
        else:
            out.text(lockdiff.diff(args.spec, args.base, args.head))
        return 0
    from recraft_build.reporter import PlainReporter, make_reporter

    if cmd == "gallery":
        from recraft_build.review.page import write_gallery

        warnings = PlainReporter(stderr)
        page = write_gallery(
            args.spec, gallery_dir=args.gallery_dir, output_dir=args.output_dir, cache_dir=args.cache_dir,
            base_rev=args.base, warn=warnings.warning,
        )
        url = page.resolve().as_uri()
        out.text(url, {"gallery": str(page), "url": url})
        return 0
    if cmd == "review":
        import time

        from recraft_build.review.server import ReviewServer

        if not 0 <= args.port <= 65535:
            raise UsageError("--port must be between 0 and 65535")
        server = ReviewServer(
            args.spec,
            output_dir=args.output_dir,
            gallery_dir=args.gallery_dir,
            cache_dir=args.cache_dir,
            port=args.port,
            provider=args.provider,
            max_credits=args.max_credits,
            base_rev=args.base,
            reporter=PlainReporter(stderr),
        )
        server.start()
        try:
            # The address carries the server's access token: only whoever reads this
            # output can see the page, pick or reroll (other local users cannot).
            stdout.write(f"{server.url}\n")
            stdout.flush()
            stderr.write("reviewing: open the address above (it holds this session's secret: do not share it); Ctrl-C stops\n")
            stderr.flush()
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            stderr.write("review stopped\n")
            return 0
        finally:
            server.stop()
    # pick / reroll
    from recraft_build.review import picking

    live = stderr.isatty() and not as_json and os.environ.get("TERM") != "dumb"
    reporter = make_reporter(stderr, live=live)
    try:
        if cmd == "pick":
            result = picking.pick(
                args.spec, args.asset, args.index, output_dir=args.output_dir, cache_dir=args.cache_dir,
                provider=args.provider, max_credits=args.max_credits, reporter=reporter,
            )
        else:
            result = picking.reroll(
                args.spec, args.asset, output_dir=args.output_dir, cache_dir=args.cache_dir,
                provider=args.provider, max_credits=args.max_credits, reporter=reporter,
            )
    finally:
        reporter.close()
    if as_json:
        out.text("", result.to_json())
    if result.failed:
        # The failure itself was shown by the reporter; say what it means here.
        if cmd == "pick":
            stderr.write(
                f"the pick is recorded in the lock, but the outputs were not rebuilt; fix the error, then run "
                f"`recraft-build build {args.asset}`\n"
            )
        else:
            stderr.write("the lock is unchanged; pictures already paid for are cached, so a retry costs nothing more\n")
        return 1
    files = sum(len(a.outputs) for a in result.assets)
    if cmd == "pick":
        stderr.write(f"picked candidate {args.index} of {args.asset}; {files} output file(s) up to date in {result.output_dir}\n")
    else:
        stderr.write(
            f"new candidates for {args.asset} ({result.credits:g} credits spent); outputs use candidate 0 "
            f"(see them with `recraft-build gallery`, choose with `recraft-build pick {args.asset} INDEX`)\n"
        )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
