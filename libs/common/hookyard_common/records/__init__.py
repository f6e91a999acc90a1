"""Collections no engine owns, one module each with its name, indexes and queries.

The message, event and attempt logs tenants read; tenants, sources and the
ingest's rate counters.
"""
