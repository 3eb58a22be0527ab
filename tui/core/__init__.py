"""The pure domain of batchtop: no I/O, no Textual, no SDK imports."""
