"""How a service runs: start-up, probes, metrics, draining, and the deadline on each request head."""
