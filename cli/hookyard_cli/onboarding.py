"""First steps from the command line: a tenant, then a source (docs/local-development.md).

    hookyard tenants create NAME [--save]
    hookyard tenants broker-account TENANT_ID [--vhost V]
    hookyard sources create --provider stripe --secret whsec_... [--name N] [--json]
    hookyard sources create --provider meta --secret APP_SECRET --option verify_token=...

Creating a tenant takes the admin token (`HOOKYARD_ADMIN_TOKEN`, which
`make up` prints and records in `.hookyard/env`). Its API key is shown
once; `--save` records it in `.hookyard/env` too, so the `hookyard`
commands run here use it without an export. `broker-account` prints the
`rabbitmqctl` commands that create the tenant's restricted RabbitMQ user
(docs/broker.md#tenant-accounts); it changes nothing itself, since creating
broker users is the broker operator's.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import aiohttp
import orjson

from hookyard_cli import broker_account
from hookyard_cli.api import Api, CliError, add_connection_flags, api_key, ingest_url
from hookyard_cli.dev import state_dir, update_env_file
from hookyard_cli.stack_status import broker_addresses, setting


async def _call(args: argparse.Namespace, token: str, method: str, path: str, body: dict) -> dict:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        return await Api(ingest_url(args.url), token, session).call(method, path, json=body)


def create_tenant(args: argparse.Namespace) -> int:
    admin = args.admin_token or os.environ.get("HOOKYARD_ADMIN_TOKEN")
    if not admin:
        raise CliError("creating a tenant takes the admin token: set HOOKYARD_ADMIN_TOKEN (make up prints it)")
    tenant = asyncio.run(_call(args, admin, "POST", "/v1/tenants", {"name": args.name}))
    if args.json:
        print(orjson.dumps(tenant).decode())
    else:
        print(f"Tenant {tenant['name']} ({tenant['id']}). Its API key, shown this once:\n  {tenant['api_key']}")
    if args.save:
        path = state_dir() / "env"
        update_env_file(path, {"HOOKYARD_API_KEY": tenant["api_key"]})
        if not args.json:
            print(f"Saved as HOOKYARD_API_KEY in {path}: `hookyard` commands run here use it.")
    return 0


def create_source(args: argparse.Namespace) -> int:
    body: dict = {"name": args.name or f"{args.provider} source", "provider": args.provider}
    if args.secret:
        body["secrets"] = args.secret
    if args.option:
        body["options"] = dict(args.option)
    source = asyncio.run(_call(args, api_key(args.api_key), "POST", "/v1/sources", body))
    if args.json:
        print(orjson.dumps(source).decode())
        return 0
    print(f"Source {source['id']} ({source['provider']}): point the provider at\n  {source['url']}")
    if source["provider"] == "meta":
        print("In Meta's app dashboard, give it as the callback URL with the same verify token: Hookyard answers")
        print("Meta's verification request, and checks X-Hub-Signature-256 with the app secret (--secret).")
    if source.get("secrets_generated"):
        print(f"Its signing secret, shown this once:\n  {source['secrets'][0]}")
    print(f"Then: hookyard listen --source {source['id']} --forward-to http://localhost:3000/webhooks")
    return 0


def print_broker_account(args: argparse.Namespace) -> int:
    # The vhost of AMQP_URL unless told: where Hookyard's exchanges are.
    vhost = args.vhost or broker_addresses(setting("AMQP_URL"))[0].path[1:] or "/"
    for command in broker_account.rabbitmqctl(args.tenant_id, vhost):
        print(command)
    return 0


def option(text: str) -> tuple[str, str]:
    """`--option key=value`: one of the provider's options (docs/ingest.md#providers)."""
    key, equals, value = text.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not key=value")
    return key, value


def add_parsers(sub: argparse._SubParsersAction) -> None:
    tenants = sub.add_parser("tenants", help="tenants (admin)").add_subparsers(dest="action", required=True)
    tenant = tenants.add_parser("create", help="create a tenant and show its API key")
    tenant.add_argument("name")
    tenant.add_argument("--save", action="store_true", help="also record the key in .hookyard/env")
    tenant.add_argument("--admin-token", help="default: $HOOKYARD_ADMIN_TOKEN (prefer the variable)")
    tenant.add_argument("--json", action="store_true")
    add_connection_flags(tenant, key=False)
    tenant.set_defaults(run=create_tenant)
    account = tenants.add_parser("broker-account", help="the rabbitmqctl commands of a tenant's broker user")
    account.add_argument("tenant_id")
    account.add_argument("--vhost", help="default: the vhost of AMQP_URL")
    account.set_defaults(run=print_broker_account)

    sources = sub.add_parser("sources", help="where providers send webhooks").add_subparsers(
        dest="action", required=True
    )
    source = sources.add_parser("create", help="create a source and show its URL")
    source.add_argument("--provider", required=True, help="hmac, stripe, github, twilio, meta, ... (docs/ingest.md)")
    source.add_argument("--name", help="a name for people")
    source.add_argument(
        "--secret", action="append", help="the provider's signing secret (repeatable); generated for hmac"
    )
    source.add_argument(
        "--option",
        type=option,
        action="append",
        metavar="KEY=VALUE",
        help="a provider option (repeatable): meta's verify_token=..., hmac's signature_header=...",
    )
    source.add_argument("--json", action="store_true")
    add_connection_flags(source)
    source.set_defaults(run=create_source)
