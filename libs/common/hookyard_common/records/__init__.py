"""What Hookyard keeps for tenants to read: the message log, the event log and the attempt log."""
