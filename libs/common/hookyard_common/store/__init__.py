"""MongoDB access: the client and its index migration, bucketed logs, batch
writes that fail alone, cursor pagination. It knows no collection: each is
declared by the module that owns it, and runtime/collections.py lists them.
"""
