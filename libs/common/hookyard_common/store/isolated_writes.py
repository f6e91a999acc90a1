"""Batch inserts in which a document that cannot be stored fails alone.

A batch shares one `insert_many` across tenants. PyMongo refuses a whole
batch client-side if any one document cannot be encoded (an integer past
64 bits, a NUL in a key, text that is not UTF-8) or is over MongoDB's
16 MiB limit, and the server answers an ordered batch's first error by
stopping there. So each document is encoded on its own first (it is sent
as those bytes, encoded once), refused alone if it cannot be, and the rest
go unordered: what the server refuses (nesting too deep, a duplicate key)
comes back per document. Each caller then records the refused ones with
their reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import bson
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions
from bson.errors import InvalidDocument
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

#: MongoDB's largest document.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
DUPLICATE_KEY = 11000
#: Deepest nesting of a value carried in a document, as the ingest allows (json_input.MAX_DEPTH):
#: well under BSON's 100, since the value sits a few levels down in the documents that carry it.
MAX_NESTING = 64


@dataclass(frozen=True)
class Refused:
    """Why one document of a batch was not stored."""

    reason: str
    duplicate: bool = False


def encoded(document: dict, codec_options: CodecOptions = DEFAULT_CODEC_OPTIONS) -> RawBSONDocument | Refused:
    """The document as BSON, or why it cannot be."""
    try:
        data = bson.encode(document, codec_options=codec_options)
    except (InvalidDocument, OverflowError, ValueError, TypeError) as exc:  # UnicodeError is a ValueError
        return Refused(f"cannot be stored: {exc}"[:500])
    if len(data) > MAX_DOCUMENT_BYTES:
        return Refused(f"cannot be stored: {len(data)} bytes, over MongoDB's 16 MiB document limit")
    return RawBSONDocument(data)


def nesting(value: object) -> int:
    """How deep objects and arrays nest in `value` (0 for a scalar)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        stack.extend((child, depth + 1) for child in item)
    return deepest


def storable_problem(value: object) -> str | None:
    """Why `value` cannot travel inside Hookyard's documents (an event in a task in a
    dead-letter record), or None: for values that skipped the ingest's checks."""
    if nesting(value) > MAX_NESTING:
        return f"nests deeper than {MAX_NESTING} levels"
    refused = encoded({"value": value})
    if isinstance(refused, Refused):
        return refused.reason
    if len(refused.raw) > MAX_DOCUMENT_BYTES // 2:  # room for the record around it
        return f"is {len(refused.raw)} bytes as BSON, over the {MAX_DOCUMENT_BYTES // 2} a record can carry"
    return None


async def insert_isolated(collection: AsyncCollection, documents: Sequence[dict]) -> list[Refused | None]:
    """Insert `documents`; per document, None when stored, else why not.

    Raises only what concerns the whole batch (the server unreachable, a write concern error).
    """
    outcomes: list[Refused | None] = [None] * len(documents)
    raw, positions = [], []
    for index, document in enumerate(documents):
        encoding = encoded(document, collection.codec_options)
        if isinstance(encoding, Refused):
            outcomes[index] = encoding
        else:
            raw.append(encoding)
            positions.append(index)
    if not raw:
        return outcomes
    try:
        await collection.insert_many(raw, ordered=False)
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise
        for error in exc.details["writeErrors"]:
            duplicate = error["code"] == DUPLICATE_KEY
            outcomes[positions[error["index"]]] = Refused(str(error.get("errmsg", error["code"]))[:500], duplicate)
    return outcomes
