"""The last stage of an output: its export, found in the cache or made, and its files.

Split from :mod:`recraft_build.engine.executor`, which calls :meth:`Exports.final` once
per output it builds. The rules are the executor's: the lock is the authority (an
export record that disagrees with what the lock pins is ignored; under ``--frozen`` a
file that would differ from the lock is an error and nothing of it is written), blobs
go into the store before their record, and only files whose content changed are
written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from recraft_build.cache.base import BuildStore
from recraft_build.cache.records import ExportFile, ExportRecord, RecordReader
from recraft_build.domain import Picture, media_type_for_format
from recraft_build.engine import keys
from recraft_build.engine.lockdata import LockedFile
from recraft_build.engine.outputs import OutputState, write_output
from recraft_build.engine.plan import OutputPlan, StepPlan
from recraft_build.errors import LockMismatch
from recraft_build.steps.catalog import export_files_allowed

__all__ = ["Exports", "file_path"]


class Exports:
    """Exports outputs and writes their files; all I/O objects come in here.

    ``steps`` is the ``steps.registry`` module (or a stand-in); ``file_names(output,
    path, sha256)`` is the file written for a locked ``path``; ``check_cancel`` raises
    when the build was interrupted; ``size`` gives a picture's (width, height), or
    (None, None) when it cannot tell.
    """

    def __init__(
        self,
        *,
        store: BuildStore,
        records: RecordReader,
        state: OutputState,
        steps: Any,
        output_dir: Path,
        file_names: Callable[[Any, str, str], str],
        warn: Callable[[str], None],
        allow_generate: bool,
        check_cancel: Callable[[], None],
        size: Callable[[Picture], tuple[int | None, int | None]],
    ):
        self.store = store
        self.records = records
        self.state = state
        self.steps = steps
        self.out = output_dir
        self.file_names = file_names
        self.warn = warn
        self.allow_generate = allow_generate
        self.check_cancel = check_cancel
        self.size = size

    def final(
        self, last: Any, picture: Callable[[], Picture], sp: StepPlan, op: OutputPlan, asset: str
    ) -> tuple[str, tuple[LockedFile, ...]]:
        """Export the last picture of an output's chain and write its file(s); return the
        export's key and the files.

        ``last`` is the chain's last point (its ``digest``); ``picture()`` gives its
        picture, and is only called when the export must be made. The export's record
        lists files by ``name`` ("" for the single file of an ordinary output,
        ``favicon.ico``... for a favicon set), never by output path, so two outputs with
        the same content share one cache entry.
        """
        assert last.digest is not None
        key = keys.step_key(sp.name, sp.params, sp.version, last.digest)
        rec = self.records.export(key)
        pinned = {f.path: f.sha256 for f in op.locked_files} if key == op.locked_key else {}
        if rec is not None and not export_files_allowed(rec.kind, [f.name for f in rec.files]):
            self.warn(f"asset {asset!r}: the cache's export record for {op.spec.path} names files "
                      "its export does not write; ignored")
            rec = None
        if rec is not None and pinned and any(pinned.get(file_path(op, f.name)) != f.sha256 for f in rec.files):
            self.warn(
                f"asset {asset!r}: the cache's export record for {op.spec.path} disagrees with the lock; "
                "exporting it again"
            )
            rec = None
        made: tuple[ExportFile, ...] | None = None
        blobs: dict[str, bytes] = {}
        if rec is not None and rec.kind == sp.name:
            made = rec.files
            for f in made:
                rel = file_path(op, f.name)
                # Only read blobs for files that must be (re)written.
                if self.state.observe(self.file_names(op.spec, rel, f.sha256)) != f.sha256:
                    data = self.store.get_blob(f.sha256)
                    if data is None:
                        made = None
                        break
                    blobs[rel] = data
        if made is None:
            src = picture()
            self.check_cancel()
            files: list[ExportFile] = []
            blobs = {}
            exported = self._export(src, op, asset)
            for name, (data, fmt) in exported.items():
                w, h = self.size(Picture(data, media_type_for_format(fmt, "application/octet-stream")))
                files.append(ExportFile(name, keys.digest_bytes(data), len(data), fmt, w, h))
                blobs[file_path(op, name)] = data
            made = tuple(files)
            wrong = [file_path(op, f.name) for f in made if pinned and pinned.get(file_path(op, f.name)) != f.sha256]
            if wrong and not self.allow_generate:
                raise LockMismatch(
                    f"asset {asset!r}: {', '.join(wrong)} would differ from what the lock pins; nothing of "
                    "it was written (--frozen writes only what the lock pins: rebuild without --frozen "
                    "and commit the lock)"
                )
            # The blobs and their record in one index transaction: the record never
            # names a blob the index does not have.
            with self.store.batch():
                for data, _fmt in exported.values():
                    self.store.put_blob(data)
                self.store.put_record(key, ExportRecord(sp.name, made).to_json())
        written = []
        for f in made:
            rel = file_path(op, f.name)
            if rel in blobs:
                write_output(self.out, disk := self.file_names(op.spec, rel, f.sha256), blobs[rel])
                self.state.record(disk, f.sha256)
            written.append(LockedFile(rel, f.sha256, f.bytes, f.format, f.width, f.height))
        return key, tuple(written)

    def _export(self, src: Picture, op: OutputPlan, asset: str) -> dict[str, tuple[bytes, str]]:
        """name -> (bytes, format) of the file(s) of one output."""
        spec = op.spec
        if spec.favicon:
            made = self.steps.favicon(src, dict(spec.options), asset=asset)
            return {name: (data, name.rsplit(".", 1)[-1].lower()) for name, data in sorted(made.items())}
        data = self.steps.export(src, spec.format, dict(spec.options), asset=asset)
        return {"": (data, spec.format)}


def file_path(op: OutputPlan, name: str) -> str:
    """Output-relative path of file ``name`` of an output ("" is the output itself)."""
    if not name:
        return op.spec.path
    return f"{op.spec.path.rstrip('/')}/{name}"
