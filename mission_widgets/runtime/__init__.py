"""Where missions execute: the SQLite store, the backends and the worker entry point."""
