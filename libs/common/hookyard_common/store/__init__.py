"""MongoDB access: the client and its index migration, every collection (schema),
bucketed logs, batch writes that fail alone, cursor pagination.
"""
