"""Monitors on the ingest: pings in, the monitor API, the check log."""
