"""The tenant and admin API: tenants, events, endpoints, messages, dead letters, stats, parked messages."""
