"""Inbound providers: one interface (`base.Provider`), one module per provider, one registry.

`base` is what the receiving path calls; `signatures` the constant-time MAC checks every
signing provider shares; `event_naming` how a delivery's type and dedup key are made;
`registry.PROVIDERS` every provider by name. To add a provider, see docs/ingest.md
('Adding a provider').
"""

from hookyard_ingest.receiving.providers.base import (
    InboundRequest,
    OptionsError,
    Provider,
    Reply,
    VerificationError,
    Verified,
)
from hookyard_ingest.receiving.providers.event_naming import normalize_event_type
from hookyard_ingest.receiving.providers.registry import PROVIDERS

__all__ = [
    "PROVIDERS",
    "InboundRequest",
    "OptionsError",
    "Provider",
    "Reply",
    "VerificationError",
    "Verified",
    "normalize_event_type",
]
