"""``python -m shared.cli``: the same as the ``opsuite`` command."""

from shared.cli import main

raise SystemExit(main())
