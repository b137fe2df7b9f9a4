"""``python -m recraft_build`` and the ``recraft-build`` command.

A no-op ``build`` or ``status`` is answered from its stamp before anything else is
imported (:mod:`recraft_build.engine.fastpath`); everything else goes to
:func:`recraft_build.cli.run`.
"""

from __future__ import annotations

import sys


def main() -> int:
    """Run the command line on ``sys.argv``; return the exit code."""
    from recraft_build.engine.fastpath import answer

    code = answer(sys.argv[1:], sys.stdout, sys.stderr)
    if code is not None:
        return code
    from recraft_build.cli import run

    return run()


if __name__ == "__main__":
    raise SystemExit(main())
