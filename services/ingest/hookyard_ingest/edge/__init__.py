"""What every request passes through at the edge: errors, auth, bodies, strict JSON, limits, public URLs."""
