"""Prints the OpenAPI document: `.venv/bin/python -m hookyard_ingest.spec > docs/openapi.json` (`make openapi`)."""

from __future__ import annotations

import sys

import orjson

from hookyard_ingest.app import openapi_document


def main() -> None:
    sys.stdout.buffer.write(orjson.dumps(openapi_document(), option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
