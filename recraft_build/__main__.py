"""``python -m recraft_build`` runs the command line."""

from .cli import main

raise SystemExit(main())
