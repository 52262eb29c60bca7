"""``collapse-monitor audit``: validate the inputs, then run the ``audit_round`` flow."""

from __future__ import annotations

import json

from monitor import io
from monitor.commands import quiet_prefect
from monitor.config import check_loop_name, check_round_number, load_settings
from monitor.render import console, render_audit


def run(args) -> int:
    check_loop_name(args.loop)
    check_round_number(args.round)
    # Fail fast, before any state is touched or a Prefect server starts.
    reference = io.load_embeddings(args.reference, "reference")
    round_ = io.load_embeddings(args.data, "round", args.round)
    io.check_same_dim(reference, round_, args.round)
    settings = load_settings(args.home)
    if args.json:
        quiet_prefect()
    from flows.audit import audit_round

    result = audit_round(
        loop=args.loop,
        round_number=args.round,
        data_path=str(round_.path.resolve()),
        reference_path=str(reference.path.resolve()),
        home=str(settings.home),
        k=args.k,
        n_boot=args.bootstrap,
        seed=args.seed,
    )
    if args.json:
        print(json.dumps(result))
    else:
        render_audit(console(), result)
    return 0
