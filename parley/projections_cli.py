"""`parley projections status | rebuild | verify`: operate the read models (see README).

The database is DATABASE_URL, or else the embedded PostgreSQL of a running `parley up`
(found through PARLEY_DATA_DIR, default `.parley`).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from domain.app import Parley
from parley.progress import ProgressBar
from projectors.base import ReadModel
from projectors.rebuild import Rebuild, RebuildError
from projectors.replay import REPLAY_BATCH
from projectors.runner import live_projections
from projectors.status import Lag, status
from projectors.verify import Verdict, verify
from shared.settings import ConfigurationError, Settings

POOL_SIZE = 3  # the log reader, the batch transaction, one spare


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("projections", help="status, rebuild and verify read models")
    actions = parser.add_subparsers(dest="action", required=True)
    show = actions.add_parser("status", help="positions, lag and last error of each projection")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    rebuild = actions.add_parser(
        "rebuild", help="replay the log into shadow tables and swap them in (zero downtime)")
    verify_ = actions.add_parser(
        "verify", help="compare each read model with a fresh replay of the log")
    for sub in (rebuild, verify_):
        sub.add_argument("names", nargs="*", metavar="NAME", help="projections to process")
        sub.add_argument("--all", action="store_true", help="every live projection")
        sub.add_argument("--batch-size", type=int, default=REPLAY_BATCH,
                         help=f"events per transaction (default {REPLAY_BATCH})")
    rebuild.add_argument("--fresh", action="store_true",
                         help="discard a shadow left by an interrupted rebuild, start over")


def run(args: argparse.Namespace) -> int:
    try:
        settings = replace(configured_settings(), db_pool_size=POOL_SIZE)
        if args.action == "status":
            return _status(settings, json_output=args.json)
        projections = _select(args.names, args.all)
        if args.batch_size < 1:
            raise ValueError("--batch-size must be at least 1")
        if args.action == "rebuild":
            return _rebuild(settings, projections, fresh=args.fresh, batch_size=args.batch_size)
        return _verify(settings, projections, batch_size=args.batch_size)
    except (ConfigurationError, RebuildError, ValueError) as exc:
        print(f"parley projections {args.action}: {exc}", file=sys.stderr)
        return 2


def _select(names: list[str], everything: bool) -> list[ReadModel]:
    known = {p.name: p for p in live_projections()}
    if everything == bool(names):
        raise ValueError(f"name projections or pass --all (known: {', '.join(known)})")
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown projection {', '.join(unknown)} (known: {', '.join(known)})")
    return list(known.values()) if everything else [known[n] for n in dict.fromkeys(names)]


def _status(settings: Settings, *, json_output: bool) -> int:
    app = Parley(env=settings.eventsourcing_env())
    try:
        report = status(app, live_projections())
    finally:
        app.close()
    if json_output:
        print(json.dumps(asdict(report), default=str, indent=2))
        return 0
    print(f"log head: {report.head}")
    print(f"{'name':<24}{'position':>10}{'lag':>10}{'lag (s)':>10}  last error")
    for lag in [*report.projections, *report.others, *report.shadows]:
        print(_line(lag))
    if report.skipped:
        print(f"\nskipped events ({len(report.skipped)}): each projection named moved past"
              " it without applying it; fix the code, then `parley projections rebuild NAME`")
        for skip in report.skipped:
            print(f"  {skip.name:<22}at {skip.position:<10} {skip.occurred_at:%Y-%m-%d %H:%M:%S}"
                  f"  {skip.error.splitlines()[0][:120]}")
    return 0


def _line(lag: Lag) -> str:
    seconds = "-" if lag.seconds is None else f"{lag.seconds:.1f}"
    error = "-"
    if lag.error is not None:
        state = "" if lag.error_is_current else " (recovered)"
        error = (f"{lag.error.occurred_at:%Y-%m-%d %H:%M:%S} at {lag.error.position}{state}:"
                 f" {lag.error.error.splitlines()[0][:120]}")
    return f"{lag.name:<24}{lag.position:>10}{lag.events:>10}{seconds:>10}  {error}"


def _rebuild(settings: Settings, projections: list[ReadModel], *, fresh: bool,
             batch_size: int) -> int:
    bar = ProgressBar("rebuild " + ", ".join(p.name for p in projections))
    swapped = Rebuild(settings, projections, progress=bar, fresh=fresh,
                      batch_size=batch_size).run()
    bar.finish("swapped in: " + ", ".join(f"{n} at {p}" for n, p in swapped.items()))
    return 0


def _verify(settings: Settings, projections: list[ReadModel], *, batch_size: int) -> int:
    bar = ProgressBar("verify " + ", ".join(p.name for p in projections))
    verdicts = verify(settings, projections, progress=bar, batch_size=batch_size)
    bar.finish()
    for verdict in verdicts:
        _print_verdict(verdict)
    return 0 if all(v.equal for v in verdicts) else 1


def _print_verdict(verdict: Verdict) -> None:
    word = "equal" if verdict.equal else "DIFFERENT"
    print(f"{verdict.projection}: {word} at position {verdict.position}")
    for table in verdict.tables:
        print(f"  {table.table}: {table.live_rows} live rows, {table.rebuilt_rows} rebuilt,"
              f" digest {table.live_digest[:12]} / {table.rebuilt_digest[:12]}")
        for row in table.only_live:
            print(f"    only live:    {row}")
        for row in table.only_rebuilt:
            print(f"    only rebuilt: {row}")


def configured_settings() -> Settings:
    """From the environment; the embedded PostgreSQL of `parley up` if DATABASE_URL is unset."""
    settings = Settings.from_env()
    if settings.database_url:
        return settings
    url = embedded_database_url(settings.data_dir)
    if url is None:
        raise ConfigurationError("set DATABASE_URL, or run `parley up` (no embedded PostgreSQL"
                                 f" is running in {settings.data_dir})")
    return replace(settings, database_url=url)


def embedded_database_url(data_dir: Path, database: str = "parley") -> str | None:
    """The URL of the embedded PostgreSQL `parley up` runs in data_dir (from postmaster.pid)."""
    pid_file = data_dir / "postgres" / "postmaster.pid"
    try:
        lines = pid_file.read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 5 or not lines[4].strip():
        return None
    port, socket_dir = lines[3].strip(), lines[4].strip()
    return (f"postgresql://postgres@/{database}"
            f"?host={urllib.parse.quote(socket_dir, safe='')}&port={port}")
