"""``python -m latentmirror`` is the ``latentmirror`` command."""

from .plugin.cli import main

raise SystemExit(main())
