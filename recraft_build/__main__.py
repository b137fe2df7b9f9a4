"""``python -m recraft_build`` runs the command line."""

from recraft_build.cli import main

raise SystemExit(main())
