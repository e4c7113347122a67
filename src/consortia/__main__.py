"""``python -m consortia``: the same as the ``consortia`` command."""

from consortia.cli import main

raise SystemExit(main())
