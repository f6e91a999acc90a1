"""Every provider by the name a source stores: the one list to extend with a new provider.

An explicit list rather than registration on import, so the set of providers is read in
one place and never depends on which modules happened to be imported.
"""

from __future__ import annotations

from hookyard_ingest.receiving.providers.base import Provider
from hookyard_ingest.receiving.providers.generic_hmac import HmacProvider
from hookyard_ingest.receiving.providers.github import GitHubProvider
from hookyard_ingest.receiving.providers.mailgun import MailgunProvider
from hookyard_ingest.receiving.providers.meta import MetaProvider
from hookyard_ingest.receiving.providers.none import NoneProvider
from hookyard_ingest.receiving.providers.shopify import ShopifyProvider
from hookyard_ingest.receiving.providers.slack import SlackProvider
from hookyard_ingest.receiving.providers.standard_webhooks import StandardWebhooksProvider
from hookyard_ingest.receiving.providers.stripe import StripeProvider
from hookyard_ingest.receiving.providers.twilio import TwilioProvider

PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        HmacProvider(),
        StandardWebhooksProvider(),
        StripeProvider(),
        GitHubProvider(),
        TwilioProvider(),
        MailgunProvider(),
        SlackProvider(),
        ShopifyProvider(),
        MetaProvider(),
        NoneProvider(),
    )
}
