"""The floor every service stands on: settings, logs, metrics, and the batching
and caching that keep MongoDB off hot paths."""
