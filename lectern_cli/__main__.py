"""``python -m lectern_cli`` runs the CLI (the same as the ``lectern`` script)."""

from lectern_cli.main import main

raise SystemExit(main())
