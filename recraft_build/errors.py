"""The one exception tree of recraft-build.

Every error a user can cause derives from :class:`RecraftBuildError` and carries a
message that says what went wrong, where, and what to do. Third-party exceptions
(yaml, jsonschema, httpx, diskcache, PIL) are converted where they happen and chained
with ``from`` so a bug report still has the original.

::

    RecraftBuildError
    ├── UsageError              bad command line (exit 2)
    ├── SpecError               the spec is wrong; holds every Problem found (exit 3)
    ├── PlanError               the plan is refused before any API call (exit 3)
    │   ├── FrozenError         --frozen and some asset needs a new picture
    │   └── BudgetError         --max-credits would be passed
    ├── LockError               the lock file is unreadable
    ├── StoreError              the cache folder cannot be used
    ├── ProviderError           a provider call failed (has provider, status, request_id)
    │   ├── AuthError           401/403: the token is missing or wrong
    │   ├── RequestRejected     400/404/422: the request itself is wrong; never retried
    │   ├── TransientError      429/5xx/connection: retried; raised when retries run out
    │   ├── AmbiguousError      a paid POST whose answer was lost: it may have been billed
    │   └── BadResultError      the result is not a usable picture; never cached
    ├── StepError               a post-processing step failed (has asset and step)
    ├── OutputError             an output cannot be written where the spec says
    └── BuildFailed             one or more assets failed (exit 1); holds the results
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = [
    "AmbiguousError",
    "AuthError",
    "BadResultError",
    "BudgetError",
    "BuildFailed",
    "FrozenError",
    "LockError",
    "OutputError",
    "PlanError",
    "Problem",
    "ProviderError",
    "RecraftBuildError",
    "RequestRejected",
    "SpecError",
    "StepError",
    "StoreError",
    "TransientError",
    "UsageError",
]


def _with_context(message: str, *parts: str) -> str:
    """``"asset 'x', provider recraft: message"``: the non-empty parts, then the message."""
    prefix = ", ".join(p for p in parts if p)
    return f"{prefix}: {message}" if prefix else message


class RecraftBuildError(Exception):
    """Base of every error recraft-build raises on purpose.

    ``exit_code`` is what the command line exits with when this error ends a command.
    """

    exit_code: int = 1


class UsageError(RecraftBuildError):
    """The command line is wrong (unknown target, bad option value...)."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a spec, with its place.

    ``line`` and ``col`` are 1-based; 0 means unknown. ``path`` is the dotted path of
    the field (``assets[2].outputs[0].path``); ``hint`` says what to do, if anything.
    """

    file: str
    line: int
    col: int
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else f"{self.file}"
        field = f" {self.path}:" if self.path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}:{field} {self.message}{hint}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file, self.line, self.col, self.path, self.message)


class SpecError(RecraftBuildError):
    """The spec is wrong. ``problems`` lists every problem found, sorted by place."""

    exit_code = 3

    def __init__(self, problems: Sequence[Problem]):
        self.problems = sorted(problems, key=Problem.sort_key)
        super().__init__("\n".join(str(p) for p in self.problems))


class PlanError(RecraftBuildError):
    """The plan is refused before any API call is made."""

    exit_code = 3


class FrozenError(PlanError):
    """``--frozen`` was given and these assets would need a new (paid) picture."""

    def __init__(self, assets: Sequence[str]):
        self.assets = list(assets)
        names = ", ".join(self.assets)
        super().__init__(
            f"--frozen: {len(self.assets)} asset(s) would need a new picture: {names} "
            "(run a build without --frozen and commit the lock, or restore the cache)"
        )


class BudgetError(PlanError):
    """The build would cost more than ``--max-credits`` allows."""

    def __init__(self, needed: float, limit: float, *, started: bool = False):
        self.needed = needed
        self.limit = limit
        self.started = started
        when = "the next call" if started else "the plan"
        super().__init__(
            f"{when} would bring the cost to {needed:g} credits, over --max-credits {limit:g} "
            "(raise --max-credits, or build fewer targets)"
        )


class PinnedPictureMissing(PlanError):
    """Approved pictures the lock pins are in no cache: the build will not repaint them."""

    def __init__(self, assets: Sequence[tuple[str, str]], lock_name: str = "the lock"):
        self.assets = [name for name, _digest in assets]
        listed = ", ".join(f"{name} ({digest[:12]})" for name, digest in assets)
        first = self.assets[0] if self.assets else "ASSET"
        super().__init__(
            f"{len(self.assets)} approved picture(s) pinned in {lock_name} are in no cache, local or "
            f"remote: {listed}; nothing was built, the lock is unchanged. Ways out: point --remote-cache "
            f"(or RECRAFT_BUILD_REMOTE_CACHE) at the team's cache or shared folder that holds them; or, to "
            f"pay for a new picture and replace the approved one, `recraft-build reroll {first}`"
        )


class LockMismatch(PlanError):
    """Under ``--frozen``, a file would not have the digest the lock pins."""


class LockError(RecraftBuildError):
    """The lock file cannot be read or written."""

    exit_code = 3


class StoreError(RecraftBuildError):
    """The cache folder cannot be used."""


class ProviderError(RecraftBuildError):
    """A provider call failed.

    Carries the provider's name, the HTTP status (if any) and the server's request id
    (if it gave one). ``resends`` is the number of paid requests the failed call had
    sent again after lost answers (each may have been billed, like the result field of
    the same name). Messages never contain a token.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        request_id: str | None = None,
        asset: str | None = None,
        resends: int = 0,
    ):
        self.provider = provider
        self.status = status
        self.request_id = request_id
        self.asset = asset
        self.resends = resends
        super().__init__(message)

    def __str__(self) -> str:
        return _with_context(
            super().__str__(),
            f"asset {self.asset!r}" if self.asset else "",
            f"provider {self.provider}" if self.provider else "",
            f"HTTP {self.status}" if self.status is not None else "",
            f"request id {self.request_id}" if self.request_id else "",
        )


class AuthError(ProviderError):
    """The token is missing or rejected (401/403). Never retried."""


class RequestRejected(ProviderError):
    """The server refused the request as wrong (400/404/422). Never retried."""


class TransientError(ProviderError):
    """A failure that retrying may cure (429, 5xx, connection); raised when retries ran out."""


class AmbiguousError(ProviderError):
    """A paid request was sent but its answer was lost: it may have been billed."""


class BadResultError(ProviderError):
    """The provider answered, but the result is not a usable picture. Never cached."""


class StepError(RecraftBuildError):
    """A post-processing step failed or cannot apply to its input."""

    def __init__(self, message: str, *, step: str = "", asset: str | None = None):
        self.step = step
        self.asset = asset
        super().__init__(message)

    def __str__(self) -> str:
        return _with_context(
            super().__str__(),
            f"asset {self.asset!r}" if self.asset else "",
            f"step {self.step}" if self.step else "",
        )


class OutputError(RecraftBuildError):
    """An output cannot be written where the spec says (outside the folder, symlink...)."""


class BuildFailed(RecraftBuildError):
    """One or more assets failed. ``result`` is the build's full result."""

    exit_code = 1

    def __init__(self, message: str, result: Any = None):
        self.result = result
        super().__init__(message)
