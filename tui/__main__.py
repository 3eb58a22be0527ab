"""Allow `python -m tui` to behave exactly like the `batchtop` command."""

from tui.cli import entry

raise SystemExit(entry())
