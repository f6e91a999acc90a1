"""The `hookyard` CLI: its version, the one both distributions (`hookyard`, `hookyard-cli`) report."""

__version__ = "0.1.0"
