"""Provider webhooks in: `/in/{source_id}`, sources, providers' verification, the published event."""
