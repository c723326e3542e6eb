"""``python -m autoscaler``: the same command line as the ``autoscaler`` console script."""

from autoscaler.cli import main

raise SystemExit(main())
