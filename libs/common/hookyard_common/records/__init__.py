"""Collections no engine owns, one module each with its name, indexes and queries.

The message and event logs tenants read; tenants, sources and the ingest's
rate counters. (The attempt log belongs to the delivery engine, the monitors'
history to the monitor engine.)
"""
