"""Async I/O adapters: API wrapper, monitor, audit log, ledger, results store, actions."""
