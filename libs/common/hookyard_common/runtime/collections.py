"""Every collection Hookyard keeps, as the modules that own them declare it.

A collection belongs to one module, which holds its name (`COLLECTION`, or a
named constant where a module owns several), its indexes beside it, and its
queries; everything else imports the name from there. This list is what
start-up ensures (`Store.ensure_indexes`), so a new collection is its owning
module's declaration plus one line here.
"""

from __future__ import annotations

from hookyard_common.delivery import attempt_log, dead_letters, endpoint_cache
from hookyard_common.monitors import history, model, ping_keys, runs
from hookyard_common.records import (
    api_keys,
    console_sessions,
    event_log,
    idempotency_keys,
    message_log,
    rate_counters,
    sources,
    tenants,
)
from hookyard_common.store.client import CollectionIndexes

COLLECTIONS: tuple[CollectionIndexes, ...] = (
    # What tenants configure.
    tenants.INDEXES,
    api_keys.INDEXES,
    sources.INDEXES,
    endpoint_cache.INDEXES,
    model.INDEXES,
    ping_keys.INDEXES,
    # What Hookyard records for them.
    message_log.INDEXES,
    event_log.INDEXES,
    idempotency_keys.INDEXES,
    attempt_log.INDEXES,
    dead_letters.INDEXES,
    dead_letters.REPLAY_RECORD_INDEXES,
    history.CHECK_INDEXES,
    history.FLIP_INDEXES,
    history.INCIDENT_INDEXES,
    runs.INDEXES,
    # The ingest's shared rate limits and the console's sign-ins.
    rate_counters.INDEXES,
    console_sessions.INDEXES,
)
