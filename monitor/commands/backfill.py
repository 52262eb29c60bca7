"""``collapse-monitor backfill``: re-audit a loop's rounds from their recorded sources."""

from __future__ import annotations

import contextlib
import json

from monitor.commands import quiet_prefect
from monitor.config import check_loop_name, load_settings
from monitor.render import console


def run(args) -> int:
    check_loop_name(args.loop)
    settings = load_settings(args.home, args.rules)
    settings.rules()
    quiet_prefect()
    from flows.audit import backfill_loop

    con = console()
    with con.status(f"backfilling {args.loop}...") if not args.json else contextlib.nullcontext():
        result = backfill_loop(args.loop, home=str(settings.home), force=args.force,
                               rules_path=None if settings.rules_path is None else str(settings.rules_path))
    if args.json:
        print(json.dumps(result))
    else:
        con.print(f"{args.loop}: re-audited rounds {result['audited'] or 'none'}; "
                  f"skipped {result['skipped'] or 'none'}{' (resumed)' if result['resumed'] else ''}")
    return 0

