"""What a user asks of one build, as one value (instead of a long argument list)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BuildOptions"]


@dataclass(frozen=True)
class BuildOptions:
    """The build's switches (``recraft-build build`` flags).

    ``jobs``: generations under way at once (``-j``); ``keep_going``: build the others
    when one fails; ``force``: a re-roll of every target (new pictures, paid);
    ``frozen``: never make a new picture (CI); ``max_credits``: refuse to spend more
    (None: no limit).
    """

    jobs: int = 8
    keep_going: bool = False
    force: bool = False
    frozen: bool = False
    max_credits: float | None = None

    def __post_init__(self) -> None:
        if self.jobs < 1:
            from recraft_build.errors import UsageError

            raise UsageError("-j/--jobs must be at least 1")
