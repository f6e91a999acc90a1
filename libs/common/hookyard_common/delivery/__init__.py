"""The delivery engine the dispatcher and the retrier share.

Endpoints, routing, one attempt, signing, health, the decision, retries, dead letters.
"""
