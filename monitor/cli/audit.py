"""``collapse-monitor audit``: validate the inputs, then run the ``audit_round`` flow."""

from __future__ import annotations

import json
import os
from pathlib import Path

from monitor import modalities
from monitor import inputs
from monitor.inputs.comparability import check_comparable
from monitor.config import check_loop_name, check_round_number, load_settings
from monitor.publishing.render import console, render_audit
from monitor.store import TrajectoryStore


# AuditOptions' fields whose CLI flags have other names; every other field is the flag of its own name.
_FLAG_OF_FIELD = {"n_boot": "bootstrap", "constraints_path": "constraints", "schema_path": "schema"}


def _options(args, modality: str):
    from monitor.options import AuditOptions

    return AuditOptions(modality=modality, **{name: getattr(args, _FLAG_OF_FIELD.get(name, name))
                                              for name in AuditOptions.model_fields if name != "modality"})


def _validated_inputs(args, modality: str, options):
    """Load both inputs to refuse bad input before anything runs (the flow's loads in this process reuse them)."""
    kind = modalities.MODALITY[modality]
    reference = kind.load(args.reference, "reference", None, options)
    round_ = kind.load(args.data, "round", args.round, options, reference)
    kind.check_pair(reference, round_, options, args.round)
    if args.pool is not None:
        kind.check_pool(args.pool)
    return reference, round_


def run(args) -> int:
    check_loop_name(args.loop)
    check_round_number(args.round)
    modalities.check_featurizer(args.featurizer)
    # Fail fast, before any state is touched or a Prefect server starts.
    modality = inputs.detect_modality(args.data, args.modality, args.text_field, round_number=args.round,
                                      question_field=args.question_field, answer_field=args.answer_field)
    modalities.MODALITY[modality].check_option_files(args.constraints, args.schema)
    if args.verifier is not None:
        from monitor.modalities.verifier import check_spec

        check_spec(args.verifier)
    options = _options(args, modality)
    reference, round_ = _validated_inputs(args, modality, options)
    if options.verifier is not None and modality == "reasoning":
        from monitor.modalities.verifier import probe

        probe(options.verifier)
    settings = load_settings(args.home, args.rules)
    settings.rules()  # a bad rules file is refused before anything runs
    with TrajectoryStore(settings.store_url) as store:
        check_comparable(
            store.round_sizes(args.loop), args.loop, args.round, n_reference=reference.n_used, n_round=round_.n_used,
            reference_fingerprint=reference.fingerprint, allow_size_change=args.allow_size_change,
        )
    import contextlib

    from monitor.cli.calibrate import NullProgress

    parameters = {
        "loop": args.loop, "round_number": args.round, "data_path": str(round_.path.resolve()),
        "reference_path": str(reference.path.resolve()), "options": options.model_dump(), "home": str(settings.home),
        "rules_path": None if settings.rules_path is None else str(settings.rules_path),
        "pushgateway": args.push_gateway or os.environ.get("COLLAPSE_MONITOR_PUSHGATEWAY"),
        "pool_path": None if args.pool is None else str(Path(args.pool).resolve()),
    }
    building = args.pool is not None and not args.json  # a first audit with a pool builds the null: show it
    with NullProgress(settings.store_url, args.loop, args.null_rounds, show=True) if building \
            else contextlib.nullcontext():
        result = _audit(parameters, options, args, settings)
    if args.json:
        print(json.dumps(result))
    else:
        render_audit(console(), result)
    return 0


def _audit(parameters: dict, options, args, settings) -> dict:
    """The flow's result: from the home's ``serve`` daemon when one runs (warm: no imports, no Prefect API to
    start), else from the flow run here."""
    from flows.audit_service import submit_audit

    result = submit_audit(settings.home, {**parameters, "task_runner": args.task_runner,
                                          "dask_address": args.dask_address})
    if result is not None:
        return result
    from flows.runners import task_runner
    from monitor.cli.flow_runs import audit_flow

    audit_round = audit_flow(settings.home, quiet=args.json,
                             task_runner=task_runner(args.task_runner, args.dask_address))
    if modalities.MODALITY[options.modality].reports_drift and args.task_runner != "dask":
        from monitor.publishing.evidently_report import preload

        preload()  # the Evidently import overlaps the temporary Prefect API's start (Dask: the workers import it)
    return audit_round(**{**parameters, "options": options})
