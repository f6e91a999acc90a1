"""The console: a web page for tenants and operators, served by the ingest, using only the public API."""
