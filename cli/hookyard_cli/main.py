"""`hookyard`: the command line of operators and developers.

    hookyard status [--json] [--host HOST]      is every dependency and service ready, and why not
    hookyard up | down | logs [-f]              the local stack (as `make up` / `make down`)
    hookyard login --url URL [--profile P]      save an ingest's URL and an API key as a profile
    hookyard tenants create NAME [--save]       a tenant and its API key (admin token)
    hookyard tenants broker-account TENANT_ID   the rabbitmqctl commands of its restricted broker user
    hookyard sources create --provider P [--option K=V]   a source and its URL
    hookyard listen --source SRC --forward-to URL [--background]   a tenant's webhooks on this machine
    hookyard listen status | stop [ID] | logs [ID] [-f]   the listeners running here
    hookyard send-test --source SRC | --endpoint EP    one signed test event
    hookyard messages tail                      the received-message log, followed
    hookyard dead-letters replay --since 2h     send dead letters again, with a progress bar
    hookyard parked list | show KEY | redrive KEY|--all   messages parked in hookyard.invalid (admin)
    hookyard completion bash|zsh|fish           the shell's completion script
    hookyard --version

It installs on its own (`pipx install ./cli`, docs/migrating.md#the-cli-on-its-own)
and imports nothing of the services'. Every command reads the same
environment variables as the services; after `make up` it also reads
`.hookyard/env`, so it works in a clone with no variable set. Exit codes:
exit_codes.py.
"""

from __future__ import annotations

import argparse
import os
import sys

import argcomplete

from hookyard_cli import (
    __version__,
    completion,
    dead_letter_replay,
    dev,
    exit_codes,
    listen,
    login,
    messages_tail,
    onboarding,
    parked_messages,
    send_test,
    stack_status,
)
from hookyard_cli.api import CliError
from hookyard_cli.dev import SERVICES, read_env_file, state_dir


def _add_stack_parsers(sub) -> None:
    sub.add_parser("up", help="start the local stack (as `make up`)").set_defaults(run=lambda a: dev.main(["up"]))
    sub.add_parser("down", help="stop what `up` started").set_defaults(run=lambda a: dev.main(["down"]))
    logs = sub.add_parser("logs", help="the local services' logs")
    logs.add_argument("services", nargs="*", metavar="SERVICE", help=f"any of {', '.join(SERVICES)} (default: all)")
    logs.add_argument("-n", "--lines", type=int, default=50, help="lines to show first (50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep showing what is added")
    logs.set_defaults(run=lambda a: dev.logs(a.services, a.lines, a.follow))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="hookyard",
        description="Hookyard's command line.",
        epilog="exit codes: 0 done, 1 not ready, 2 usage, 3 connection, 4 API error, 130 interrupted",
    )
    top.add_argument("--version", action="version", version=f"hookyard {__version__}")
    sub = top.add_subparsers(dest="command", required=True)
    stack_status.add_parser(sub)
    _add_stack_parsers(sub)
    login.add_parser(sub)
    onboarding.add_parsers(sub)
    listen.add_parser(sub)
    send_test.add_parser(sub)
    messages_tail.add_parser(sub)
    dead_letter_replay.add_parser(sub)
    parked_messages.add_parser(sub)
    completion.add_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    top = parser()
    argcomplete.autocomplete(top)  # answers the shell's completion request, when it is one, and exits
    words = list(sys.argv[1:] if argv is None else argv)
    args = top.parse_args(words)
    args.argv = words
    for key, value in read_env_file(state_dir() / "env").items():
        os.environ.setdefault(key, value)
    if getattr(args, "profile", None) and args.command != "login":
        os.environ["HOOKYARD_PROFILE"] = args.profile
    try:
        return args.run(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return exit_codes.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
