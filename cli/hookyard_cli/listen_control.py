"""`hookyard listen --background`, `listen status` and `listen stop`: listeners as background processes.

    hookyard listen --source src_... --forward-to http://localhost:3000/hooks --background
    hookyard listen status [--json]
    hookyard listen stop [src_...]
    hookyard listen logs [src_...] [-n 50] [-f]

`--background` starts the same command again as a detached process (its own
session, so closing the terminal does not end it) writing JSON lines to a
log beside its state file, and waits until it is connected or has failed.
`stop` sends SIGTERM, which the listener answers as it answers Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict

import orjson

from hookyard_cli import exit_codes, listen_state, log_files
from hookyard_cli.api import CliError, ConnectionFailure

START_SECONDS = 15.0
STOP_SECONDS = 10.0


def start_in_background(args: argparse.Namespace) -> int:
    target = args.source or args.endpoint
    if any(state.target_id == target for state in listen_state.running()):
        raise CliError(f"a listener of {target} is already running: `hookyard listen stop {target}` first")
    log = listen_state.directory() / f"{target}.log"
    log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = [word for word in args.argv if word != "--background"] + ["--json", "--log", str(log)]
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "hookyard_cli.main", *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            last = log.read_text().strip().splitlines()[-1:] or ["(no output)"]
            print(f"error: the listener ended at once (exit {child.returncode}): {last[0]}", file=sys.stderr)
            return child.returncode
        state = next((s for s in listen_state.running() if s.pid == child.pid), None)
        if state and state.connected:
            print(f"Listening to {target} in the background (pid {child.pid}), forwarding to {args.forward_to}.")
            print(f"Its log: {log}. See `hookyard listen status`; stop it with `hookyard listen stop {target}`.")
            return exit_codes.OK
        time.sleep(0.1)
    state = next((s for s in listen_state.running() if s.pid == child.pid), None)
    why = state.last_error if state and state.last_error else "no answer yet"
    raise ConnectionFailure(f"the listener (pid {child.pid}) is running but not connected: {why}; it keeps trying")


def show_status(args: argparse.Namespace) -> int:
    states = listen_state.running()
    if args.json:
        print(orjson.dumps({"listeners": [asdict(state) for state in states]}).decode())
    elif not states:
        print("No listener is running.")
    for state in [] if args.json else states:
        connection = f"connected since {state.connected_since}" if state.connected else "NOT CONNECTED"
        print(f"{state.target} {state.target_id} -> {state.forward_to}  (pid {state.pid}, {state.url})")
        print(f"  {connection}; {state.forwarded} forwarded; last error: {state.last_error or 'none'}")
        if state.log:
            print(f"  log: {state.log}")
    return exit_codes.OK if states else exit_codes.NOT_READY


def stop(args: argparse.Namespace) -> int:
    states = [state for state in listen_state.running() if args.which in (None, state.target_id)]
    if not states:
        print(f"No listener{' of ' + args.which if args.which else ''} is running.")
        return exit_codes.NOT_READY
    for state in states:
        listen_state.signal_to(state, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and any(listen_state.alive(state.pid) for state in states):
        time.sleep(0.1)
    for state in states:
        if listen_state.alive(state.pid):
            raise CliError(f"the listener of {state.target_id} (pid {state.pid}) did not stop")
        listen_state.remove(state.target_id, state.pid)
        print(f"Stopped the listener of {state.target_id} (pid {state.pid}).")
    return exit_codes.OK


def logs(args: argparse.Namespace) -> int:
    """Background listeners' logs, running or ended (seed 003's `bench ngrok logs [--follow] [--lines N]`)."""
    found = sorted(listen_state.directory().glob("*.log")) if listen_state.directory().exists() else []
    paths = {path.stem: path for path in found if args.which in (None, path.stem)}
    if not paths:
        raise CliError(f"no log of a background listener{' of ' + args.which if args.which else ''} here")
    return log_files.show(paths, args.lines, args.follow)


ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {"status": show_status, "stop": stop, "logs": logs}
