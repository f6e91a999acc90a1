"""`hookyard completion bash|zsh|fish`: the script that makes the shell complete hookyard's commands and flags.

argcomplete does the completing: the script calls `hookyard` back with the
words typed so far, and `main` answers from the same argparse parser the
commands run with, so the completion never lags behind a new flag.

    eval "$(hookyard completion bash)"              # in ~/.bashrc
    hookyard completion fish > ~/.config/fish/completions/hookyard.fish
"""

from __future__ import annotations

import argparse

import argcomplete

from hookyard_cli import exit_codes

SHELLS = ("bash", "zsh", "fish")


def run(args: argparse.Namespace) -> int:
    print(argcomplete.shellcode(["hookyard"], shell=args.shell))
    return exit_codes.OK


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("completion", help="print the shell completion script (bash, zsh or fish)")
    parser.add_argument("shell", choices=SHELLS)
    parser.set_defaults(run=run)
