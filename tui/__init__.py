"""batchtop: a terminal monitor for Anthropic Message Batches."""

__version__ = "0.1.0"
