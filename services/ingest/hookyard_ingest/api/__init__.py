"""The tenant and admin API: events, endpoints, messages, dead letters, stats, parked messages."""
