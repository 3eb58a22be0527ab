"""Allow `python -m tui` to behave exactly like the `batchtop` command."""

from tui.cli import main

raise SystemExit(main())
