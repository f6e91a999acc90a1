"""MongoDB access: the client and its indexes, bucketed logs, batch writes that fail alone, cursor pagination."""
