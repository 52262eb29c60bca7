"""``collapse-monitor audit``: validate the inputs, then run the ``audit_round`` flow."""

from __future__ import annotations

import json
import os
from pathlib import Path

from monitor import io, loaders, modalities
from monitor.commands import prepare_flows, quiet_prefect
from monitor.comparability import check_comparable
from monitor.config import check_loop_name, check_round_number, load_settings
from monitor.errors import InputError
from monitor.render import console, render_audit
from monitor.store import TrajectoryStore


def _validated_sizes(args, modality: str) -> tuple[int, int, str, str, str]:
    """Load both inputs once to refuse bad input before anything runs; sizes after subsampling."""
    if modality == "embedding":
        reference = io.load_embeddings(args.reference, "reference")
        round_ = io.load_embeddings(args.data, "round", args.round)
        io.check_same_dim(reference, round_, args.round)
        n_reference = min(reference.data.shape[0], args.max_samples)
        n_round = min(round_.data.shape[0], args.max_samples)
    elif modality == "text":
        reference = loaders.load_texts(args.reference, "reference", field=args.text_field,
                                       max_samples=args.max_samples, seed=args.seed)
        round_ = loaders.load_texts(args.data, "round", args.round, field=args.text_field,
                                    max_samples=args.max_samples, seed=args.seed)
        from monitor.pipeline import check_featurizable

        check_featurizable(reference.texts, args.featurizer, f"{reference.path} (reference)")
        check_featurizable(round_.texts, args.featurizer, f"{round_.path} (round, round {args.round})")
        n_reference, n_round = reference.n_used, round_.n_used
    else:
        reference = loaders.load_table(args.reference, "reference", max_samples=args.max_samples, seed=args.seed)
        round_ = loaders.load_table(args.data, "round", args.round, reference_columns=reference.column_kinds,
                                    max_samples=args.max_samples, seed=args.seed)
        n_reference, n_round = reference.n_used, round_.n_used
        missing = [c for c in [args.protected_attribute] if c and c not in reference.column_kinds]
        if missing:
            raise InputError(f"{reference.path} (reference): protected attribute column {missing[0]!r} is missing")
    for loaded, n, role in ((reference, n_reference, "reference"), (round_, n_round, f"round, round {args.round}")):
        if n < args.k + 1:
            raise InputError(f"{loaded.path} ({role}): {n} rows, but k={args.k} needs at least {args.k + 1}")
    return n_reference, n_round, reference.fingerprint, str(reference.path.resolve()), str(round_.path.resolve())


def run(args) -> int:
    check_loop_name(args.loop)
    check_round_number(args.round)
    modalities.check_featurizer(args.featurizer)
    # Fail fast, before any state is touched or a Prefect server starts.
    modality = loaders.detect_modality(args.data, args.modality, args.text_field, round_number=args.round)
    modalities.load_constraints_file(args.constraints)
    modalities.load_schema_file(args.schema)
    n_reference, n_round, reference_fingerprint, reference_path, data_path = _validated_sizes(args, modality)
    settings = load_settings(args.home, args.rules)
    settings.rules()  # a bad rules file is refused before anything runs
    with TrajectoryStore(settings.store_url) as store:
        check_comparable(
            store.round_sizes(args.loop), args.loop, args.round, n_reference=n_reference, n_round=n_round,
            reference_fingerprint=reference_fingerprint, allow_size_change=args.allow_size_change,
        )
    if args.json:
        quiet_prefect()
    prepare_flows(settings.home)
    from flows.audit import audit_round
    from flows.runners import task_runner

    import contextlib

    from monitor.commands.calibrate import NullProgress

    runner = task_runner(args.task_runner, args.dask_address)
    building = args.pool is not None and not args.json  # a first audit with a pool builds the null: show it
    with NullProgress(settings.store_url, args.loop, args.null_rounds, show=True) if building \
            else contextlib.nullcontext():
        result = _audit(audit_round, runner, args, data_path, reference_path, settings, modality)
    if args.json:
        print(json.dumps(result))
    else:
        render_audit(console(), result)
    return 0


def _audit(audit_round, runner, args, data_path, reference_path, settings, modality) -> dict:
    from monitor.options import AuditOptions

    options = AuditOptions(
        k=args.k, n_boot=args.bootstrap, seed=args.seed, max_samples=args.max_samples,
        allow_size_change=args.allow_size_change, modality=modality, text_field=args.text_field,
        featurizer=args.featurizer, protected_attribute=args.protected_attribute, constraints_path=args.constraints,
        schema_path=args.schema, null_rounds=args.null_rounds,
    )
    return audit_round.with_options(task_runner=runner)(
        loop=args.loop,
        round_number=args.round,
        data_path=data_path,
        reference_path=reference_path,
        options=options,
        home=str(settings.home),
        rules_path=None if settings.rules_path is None else str(settings.rules_path),
        pushgateway=args.push_gateway or os.environ.get("COLLAPSE_MONITOR_PUSHGATEWAY"),
        pool_path=None if args.pool is None else str(Path(args.pool).resolve()),
    )
