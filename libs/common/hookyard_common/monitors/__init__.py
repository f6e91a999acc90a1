"""The monitor engine: what a monitor is, its states, applying their changes once, mapping payloads, uptime."""
