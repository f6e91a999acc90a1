"""The API's contract: the typed operations the route table is made of, and the OpenAPI document built from them."""
