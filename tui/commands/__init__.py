"""Sub-commands of the `batchtop` CLI, one module each, registered in `tui.cli`."""
