"""Small stand-ins for the engine's unit tests: a counting provider and byte-level steps.

The end-to-end tests use the real placeholder provider and real steps; these keep the
planner and executor tests independent of image code.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Mapping

from recraft_build.domain import Asset, GenerationRequest, OutputSpec, Picture, Spec, StepSpec
from recraft_build.errors import ProviderError
from recraft_build.providers.base import GenerationResult, Provider, TransformResult


class CountingProvider(Provider):
    def __init__(self, family: str = "recraft", paid: bool = True, fail_on: set[str] | None = None):
        self.name = "fake"
        self.family = family
        self.paid = paid
        self.calls: list[str] = []
        self.fail_on = fail_on or set()
        self._mutex = threading.Lock()

    def generate(self, request: GenerationRequest, *, asset: str) -> GenerationResult:
        with self._mutex:
            self.calls.append(asset)
        if asset in self.fail_on:
            raise ProviderError("boom", provider=self.name)
        pics = [Picture(f"{request.prompt}#{i}".encode(), "image/png") for i in range(request.n)]
        return GenerationResult(pics, credits=40 * request.n)

    def supports(self, operation: str) -> bool:
        return operation == "remove_background"

    def transform(self, operation, picture, params, *, asset):
        with self._mutex:
            self.calls.append(f"{asset}:{operation}")
        return TransformResult(Picture(picture.data + b"|nobg", "image/png"), credits=10)


class ByteSteps:
    """Steps that transform bytes visibly, so tests can read the chain from an output."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def run_step(self, name: str, params: Mapping[str, Any], picture: Picture, *, provider, asset: str):
        self.runs.append(f"{asset}:{name}")
        if provider is not None:
            res = provider.transform(name, picture, params, asset=asset)
            return res.picture, res.credits
        return Picture(picture.data + f"|{name}{sorted(params.items())}".encode(), "image/png"), None

    def check_step_output(self, name, params, before, after, *, asset):
        pass

    def export(self, picture: Picture, fmt: str, options, *, asset: str) -> bytes:
        return picture.data + f"|{fmt}".encode()

    def favicon(self, picture, options, *, asset):
        return {"favicon.ico": picture.data + b"|ico", "icon-192.png": picture.data + b"|192"}

    def picture_size(self, picture):
        return (1, 1)


def make_spec(tmp: Path, assets: list[Asset]) -> Spec:
    return Spec(path=tmp / "assets.yaml", version=1, assets=tuple(assets))


def asset(name: str, prompt: str = "p", *, steps=(), outputs=None, n: int = 1) -> Asset:
    outs = outputs if outputs is not None else (OutputSpec(path=f"{name}.png", format="png"),)
    return Asset(
        name=name,
        request=GenerationRequest(model="recraftv3", prompt=prompt, size="1024x1024", n=n),
        steps=tuple(StepSpec(s) if isinstance(s, str) else StepSpec(*s) for s in steps),
        outputs=tuple(outs),
    )


class FlatPricing:
    """40 credits a picture, 10 a tool call, whatever the family (keeps figures readable)."""

    def generation(self, request) -> float:
        return 40.0 * request.n

    def operation(self, operation: str) -> float:
        return 10.0

    def for_family(self, family: str) -> "FlatPricing":
        return self


class DictRecords:
    """A store's record lookup over a dict of raw JSON records (key -> object)."""

    def __init__(self, records=None):
        self.records = dict(records or {})
        self.asked: list[str] = []

    def get_record(self, key):
        self.asked.append(key)
        return self.records.get(key)
