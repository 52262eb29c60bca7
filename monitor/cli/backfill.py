"""``collapse-monitor backfill``: re-audit a loop's rounds from their recorded sources, with a progress bar."""

from __future__ import annotations

import json
import threading
import time

from monitor.cli import prepare_flows, quiet_prefect
from monitor.config import check_loop_name, load_settings
from monitor.publishing.render import console
from monitor.store import TrajectoryStore


def _watch_progress(store_url: str, loop: str, since: float, total: int, stop: threading.Event, show: bool) -> None:
    """Advance a bar as rounds are re-audited (read from the store while the flow runs in the main thread)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with TrajectoryStore(store_url) as store:
        with Progress(TextColumn(f"backfill {loop}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console(), disable=not show, transient=True) as bar:
            task = bar.add_task("rounds", total=total)
            while not stop.wait(0.5):
                done = sum(a["audited_at"] >= since for a in store.round_audits(loop).values())
                bar.update(task, completed=min(done, total))


def run(args) -> int:
    check_loop_name(args.loop)
    settings = load_settings(args.home, args.rules)
    settings.rules()
    quiet_prefect()
    prepare_flows(settings.home)
    from flows.backfill import backfill_loop, plan_backfill

    with TrajectoryStore(settings.store_url) as store:
        open_backfill = store.unfinished_backfill(args.loop)
        todo, _ = plan_backfill(store.sources(args.loop), store.round_audits(args.loop),
                                None if open_backfill is None else open_backfill[1], args.force)
    stop = threading.Event()
    bar = threading.Thread(target=_watch_progress, daemon=True, args=(
        settings.store_url, args.loop, time.time(), len(todo), stop, not args.json))
    bar.start()
    try:
        result = backfill_loop(args.loop, home=str(settings.home), force=args.force,
                               rules_path=None if settings.rules_path is None else str(settings.rules_path))
    finally:
        stop.set()
        bar.join(timeout=5)
    if args.json:
        print(json.dumps(result))
    else:
        console().print(f"{args.loop}: re-audited rounds {result['audited'] or 'none'}; "
                        f"skipped {result['skipped'] or 'none'}{' (resumed)' if result['resumed'] else ''}")
    return 0
