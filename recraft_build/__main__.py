"""``python -m recraft_build`` and the ``recraft-build`` command.

A no-op ``build`` or ``status`` is answered from its stamp before anything else is
imported (:mod:`recraft_build.engine.fastpath`); everything else goes to
:func:`recraft_build.cli.run`.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Run the command line on ``sys.argv``; return the exit code.

    The process's entry point: after a fast answer it ends the process itself.
    """
    from recraft_build.engine.fastpath import answer

    code = answer(sys.argv[1:], sys.stdout, sys.stderr)
    if code is not None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # a closed pipe...: let the interpreter report it as usual
            return code
        # Nothing is left to clean up (no file, thread or handler of ours): skip tearing
        # the interpreter down, a tenth of a fast answer's time.
        os._exit(code)
    from recraft_build.cli import run

    return run()


if __name__ == "__main__":
    raise SystemExit(main())
