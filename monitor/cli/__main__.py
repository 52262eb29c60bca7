"""``python -m monitor.cli``: the same as ``collapse-monitor``."""

from monitor.cli import main

raise SystemExit(main())
