"""``python -m lrkit.cli``."""

from lrkit.cli import main

raise SystemExit(main())
