"""``collapse-monitor report``: PNG or HTML trajectory plots of a loop."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.cli.status import loop_report
from monitor.config import check_loop_name, load_settings
from monitor.errors import CollapseMonitorError
from monitor.publishing.plots import html_report, loop_plots
from monitor.publishing.render import console
from monitor.store import TrajectoryStore


def run(args) -> int:
    check_loop_name(args.loop)
    settings = load_settings(args.home)
    out = Path(args.out) if args.out else settings.home / "reports" / args.loop
    with TrajectoryStore(settings.store_url) as store:
        report = loop_report(store, args.loop)  # refuses unknown loops
        try:
            pngs = loop_plots(store, args.loop, out)
            files = [html_report(report, pngs, out / f"{args.loop}.html")] if args.format == "html" else pngs
        except OSError as exc:
            raise CollapseMonitorError(f"{out}: cannot write the report: {exc.strerror}") from exc
    if args.format == "html":
        for png in pngs:
            png.unlink()  # inlined in the page
    if args.json:
        print(json.dumps({"loop": args.loop, "files": [str(f) for f in files]}))
    else:
        for f in files:
            console().print(f"wrote {f}")
    return 0
