"""``collapse-monitor audit``: validate the inputs, then run the ``audit_round`` flow."""

from __future__ import annotations

import json

from monitor import io
from monitor.commands import quiet_prefect
from monitor.comparability import check_comparable
from monitor.errors import InputError
from monitor.store import TrajectoryStore
from monitor.config import check_loop_name, check_round_number, load_settings
from monitor.render import console, render_audit


def run(args) -> int:
    check_loop_name(args.loop)
    check_round_number(args.round)
    # Fail fast, before any state is touched or a Prefect server starts.
    reference = io.load_embeddings(args.reference, "reference")
    round_ = io.load_embeddings(args.data, "round", args.round)
    io.check_same_dim(reference, round_, args.round)
    n_reference = min(reference.data.shape[0], args.max_samples)
    n_round = min(round_.data.shape[0], args.max_samples)
    for loaded, n, role in ((reference, n_reference, "reference"), (round_, n_round, f"round, round {args.round}")):
        if n < args.k + 1:
            raise InputError(f"{loaded.path} ({role}): {n} rows, but k={args.k} needs at least {args.k + 1}")
    settings = load_settings(args.home, args.rules)
    settings.rules()  # a bad rules file is refused before anything runs
    store = TrajectoryStore(settings.store_url)
    try:
        check_comparable(
            store.round_sizes(args.loop), args.loop, args.round, n_reference=n_reference, n_round=n_round,
            reference_fingerprint=reference.fingerprint, allow_size_change=args.allow_size_change,
        )
    finally:
        store.close()
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
        max_samples=args.max_samples,
        allow_size_change=args.allow_size_change,
        rules_path=None if settings.rules_path is None else str(settings.rules_path),
    )
    if args.json:
        print(json.dumps(result))
    else:
        render_audit(console(), result)
    return 0
