"""`hookyard listen`: WebSockets that stream a tenant's events to a developer's machine."""
