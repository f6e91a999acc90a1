"""The delivery engine the dispatcher and the retrier share: endpoints, routing, one attempt, signing, health, retries, dead letters."""
