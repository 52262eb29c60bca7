"""Declarative alert rules: TOML files resolved into one :class:`MetricRule` per metric.

The shipped defaults live in ``monitor/engine/default_rules.toml`` (documented key by
key in docs/alerts.md). A user file overlays them key by key; for each metric
the settings resolve as ``[defaults] < [modality.X] < [family.X] < [metric.X]``,
and in a loop whose rounds are of modality R, ``[modality.R.metric.X]`` last:
the embedding suite computed on featurized text can then feed another signal
than on embedding rounds (see :meth:`RuleSet.for_round`).
Every unknown table, key, name or wrongly typed value is refused with the
file, the table and the key in the message.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from metrics_core.registry import FAMILIES, MODALITIES, REGISTRY, ROUND_MODALITIES, get_spec
from monitor.errors import CollapseMonitorError

DEFAULT_RULES_PATH = Path(__file__).with_name("default_rules.toml")
_SECTIONS = {"modality": MODALITIES, "family": FAMILIES}


@dataclass(frozen=True)
class MetricRule:
    """Every setting of one metric's derivatives and alert rule (see default_rules.toml)."""

    metric: str
    enabled: bool
    window: int
    min_rounds: int
    ewma_alpha: float
    noise_factor: float
    cusum_k: float
    cusum_h: float
    z_h: float
    sustain_rounds: int
    cooldown_rounds: int
    hysteresis: float
    loss_scale: str
    critical_loss: float
    critical_z: float
    forecast_horizon: int
    baseline: str
    risk_weight: float
    signal: str = "drift"  # the alarm signal it feeds: "collapse", "drift" or "none" (see monitor.engine.sequential)
    intervention: str = ""
    threshold: float | None = None  # absolute forecast/critical level; default: baseline minus critical_loss

    @property
    def higher_is_better(self) -> bool:
        return get_spec(self.metric).higher_is_better

    @property
    def family(self) -> str:
        return get_spec(self.metric).family


# Keys a table may set, with their types (``threshold`` and ``intervention`` are optional).
_KEY_TYPES: dict[str, type | tuple[type, ...]] = {
    f.name: (int, float) if f.type in ("float", "float | None") else {"int": int, "bool": bool, "str": str}[f.type]
    for f in dataclasses.fields(MetricRule)
    if f.name != "metric"
}
_CHOICES = {"loss_scale": ("relative", "absolute"), "baseline": ("first_round", "reference"),
            "signal": ("collapse", "drift", "none")}


def _fail(source: str, where: str, problem: str) -> CollapseMonitorError:
    return CollapseMonitorError(f"{source}: [{where}] {problem}")


def _check_table(source: str, where: str, table: dict) -> None:
    if not isinstance(table, dict):
        raise _fail(source, where, f"expected a table, got {type(table).__name__}")
    for key, value in table.items():
        if key not in _KEY_TYPES:
            raise _fail(source, where, f"unknown key {key!r}; known keys: {', '.join(sorted(_KEY_TYPES))}")
        expected = _KEY_TYPES[key]
        # bool is an int in Python; a number key must not take true/false.
        if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
            names = "number" if expected == (int, float) else expected.__name__
            raise _fail(source, where, f"{key} = {value!r}: expected a {names}")
        if expected == (int, float) and not math.isfinite(value):  # inf would silence an alert, nan every one
            raise _fail(source, where, f"{key} = {value!r}: expected a finite number")
        if key in _CHOICES and value not in _CHOICES[key]:
            raise _fail(source, where, f"{key} = {value!r}: expected one of {', '.join(_CHOICES[key])}")


def _check_document(source: str, doc: dict) -> None:
    known = {"version", "calibration", "alarm", "defaults", "modality", "family", "metric"}
    for key in doc:
        if key not in known:
            raise _fail(source, key, f"unknown table; known: {', '.join(sorted(known))}")
    if doc.get("version", 1) != 1:
        raise _fail(source, "version", f"unsupported rules version {doc['version']!r}; expected 1")
    calibration = doc.get("calibration", {})
    for key, value in calibration.items():
        if key not in ("threshold_scale", "target_arl0") or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(source, "calibration", f"{key} = {value!r}: expected threshold_scale or target_arl0, a number")
        if not 0 < value < float("inf"):
            raise _fail(source, "calibration", f"{key} = {value!r}: expected a finite positive number")
    for key, value in doc.get("alarm", {}).items():
        if key != "arl0" or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(source, "alarm", f"{key} = {value!r}: expected arl0, a number of rounds")
        if not 1 < value < float("inf"):
            raise _fail(source, "alarm", f"arl0 = {value!r}: expected a finite number of rounds > 1")
    _check_table(source, "defaults", doc.get("defaults", {}))
    for section, names in (*_SECTIONS.items(), ("metric", tuple(REGISTRY))):
        tables = doc.get(section, {})
        if not isinstance(tables, dict):
            raise _fail(source, section, "expected tables such as [" + section + ".NAME]")
        for name, table in tables.items():
            if name not in names:
                raise _fail(source, f"{section}.{name}", f"unknown {section} {name!r}; known: {', '.join(names)}")
            if section == "modality" and isinstance(table, dict) and "metric" in table:
                table = dict(table)
                _check_round_metrics(source, name, table.pop("metric"))
            _check_table(source, f"{section}.{name}", table)


def _check_round_metrics(source: str, modality: str, tables) -> None:
    """``[modality.R.metric.X]``: metric X's settings in loops whose rounds are of modality R."""
    where = f"modality.{modality}.metric"
    if modality not in ROUND_MODALITIES:
        raise _fail(source, where, f"a round is never of modality {modality!r}; "
                                   f"per-metric tables go under {', '.join(ROUND_MODALITIES)}")
    if not isinstance(tables, dict):
        raise _fail(source, where, f"expected tables such as [{where}.NAME]")
    for name, table in tables.items():
        if name not in REGISTRY:
            raise _fail(source, f"{where}.{name}", f"unknown metric {name!r}; known: {', '.join(REGISTRY)}")
        _check_table(source, f"{where}.{name}", table)


def _merge(base: dict, overlay: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise CollapseMonitorError(f"{path}: rules file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise CollapseMonitorError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CollapseMonitorError(f"{path}: not UTF-8 text (byte {exc.start}); a rules file is UTF-8 TOML") from None
    except OSError as exc:
        raise CollapseMonitorError(f"{path}: cannot read the rules file: {exc.strerror}") from None


@dataclass(frozen=True)
class RuleSet:
    """The resolved rules of every registered metric, plus the calibration scale."""

    document: dict
    sources: tuple[str, ...]

    @property
    def threshold_scale(self) -> float:
        return float(self.document.get("calibration", {}).get("threshold_scale", 1.0))

    @property
    def target_arl0(self) -> float | None:
        value = self.document.get("calibration", {}).get("target_arl0")
        return None if value is None else float(value)

    @property
    def arl0(self) -> float:
        """The alarm's false-alarm guarantee: average rounds to a false alarm under no feedback."""
        return float(self.document.get("alarm", {}).get("arl0", 1000.0))

    def signal_of(self, metric: str) -> str:
        """The signal a metric feeds (``"none"`` when its rule is disabled)."""
        rule = self.for_metric(metric)
        return rule.signal if rule.enabled else "none"

    @property
    def fingerprint(self) -> str:
        """Content hash of the resolved document: stored with every evaluation."""
        return hashlib.sha256(json.dumps(self.document, sort_keys=True).encode()).hexdigest()[:16]

    def for_metric(self, metric: str) -> MetricRule:
        spec = get_spec(metric)
        doc = self.document
        settings: dict = dict(doc.get("defaults", {}))
        settings.update({k: v for k, v in doc.get("modality", {}).get(spec.modality, {}).items() if k != "metric"})
        settings.update(doc.get("family", {}).get(spec.family, {}))
        settings.update(doc.get("metric", {}).get(metric, {}))
        scale = self.threshold_scale
        for key in ("cusum_h", "z_h", "critical_z"):
            settings[key] = float(settings[key]) * scale
        missing = [f.name for f in dataclasses.fields(MetricRule) if f.name not in settings and f.name != "metric"
                   and f.default is dataclasses.MISSING]
        if missing:
            raise CollapseMonitorError(f"{', '.join(self.sources)}: metric {metric}: no value for {', '.join(missing)}")
        rule = MetricRule(metric=metric, **settings)
        _check_rule(rule, self.sources)
        return rule

    def for_round(self, modality: str) -> "RuleSet":
        """The rules of a loop whose rounds are of ``modality``: its ``[modality.<modality>.metric.X]``
        tables override ``[metric.X]`` key by key.

        A text round's embedding suite runs on featurized text, where a metric can
        mean something else than on embeddings (the shipped rules route the
        spread of hashed text embeddings to the drift signal: which words are
        frequent moves it, not only how many).
        """
        scoped = self.document.get("modality", {}).get(modality, {}).get("metric")
        if not scoped:
            return self
        return RuleSet(_merge(self.document, {"metric": scoped}), self.sources)

    def with_calibration(self, threshold_scale: float, noise_factors: dict[str, float], target_arl0: float) -> "RuleSet":
        """A copy whose calibration table and per-metric noise factors are replaced."""
        overlay: dict = {"calibration": {"threshold_scale": threshold_scale, "target_arl0": target_arl0},
                         "metric": {m: {"noise_factor": f} for m, f in noise_factors.items()}}
        return RuleSet(_merge(self.document, overlay), (*self.sources, "calibration"))


def _check_rule(rule: MetricRule, sources: tuple[str, ...]) -> None:
    where = f"{', '.join(sources)}: metric {rule.metric}"
    positive_ints = {"window": 2, "min_rounds": 2, "sustain_rounds": 1, "cooldown_rounds": 1, "forecast_horizon": 0}
    for key, least in positive_ints.items():
        value = getattr(rule, key)
        if not isinstance(value, int) or value < least:
            raise CollapseMonitorError(f"{where}: {key} = {value!r}: expected an integer >= {least}")
    if not 0.0 < rule.ewma_alpha <= 1.0:
        raise CollapseMonitorError(f"{where}: ewma_alpha = {rule.ewma_alpha!r}: expected 0 < ewma_alpha <= 1")
    if not 0.0 < rule.hysteresis <= 1.0:
        raise CollapseMonitorError(f"{where}: hysteresis = {rule.hysteresis!r}: expected 0 < hysteresis <= 1")
    for key in ("noise_factor", "cusum_h", "z_h", "critical_z", "critical_loss"):
        if not getattr(rule, key) > 0:
            raise CollapseMonitorError(f"{where}: {key} = {getattr(rule, key)!r}: expected a positive number")
    for key in ("cusum_k", "risk_weight"):
        if not getattr(rule, key) >= 0:
            raise CollapseMonitorError(f"{where}: {key} = {getattr(rule, key)!r}: expected a non-negative number")


def load_rules(*paths: str | Path | None) -> RuleSet:
    """The shipped defaults overlaid with each existing ``path`` in order (None skipped)."""
    doc = _read(DEFAULT_RULES_PATH)
    _check_document(str(DEFAULT_RULES_PATH), doc)
    sources = [str(DEFAULT_RULES_PATH)]
    for path in paths:
        if path is None:
            continue
        overlay = _read(Path(path))
        _check_document(str(path), overlay)
        doc = _merge(doc, overlay)
        sources.append(str(path))
    rules = RuleSet(doc, tuple(sources))
    for view in (rules, *(rules.for_round(m) for m in ROUND_MODALITIES)):  # validate now, not at the first audit
        for metric in REGISTRY:
            view.for_metric(metric)
    return rules


def dump_rules_toml(document: dict, header: str = "") -> str:
    """Serialise a rules document (tables of scalars only) as TOML."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    if lines:
        lines.append("")

    def scalar(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float, np.integer, np.floating)):
            return repr(int(v) if isinstance(v, (int, np.integer)) else float(v))
        return json.dumps(v)  # a TOML basic string is a JSON string

    if "version" in document:
        lines.append(f"version = {scalar(document['version'])}")
    for key in ("calibration", "alarm", "defaults"):
        if document.get(key):
            lines += ["", f"[{key}]"] + [f"{k} = {scalar(v)}" for k, v in document[key].items()]
    for section in ("modality", "family", "metric"):
        for name, table in document.get(section, {}).items():
            plain = {k: v for k, v in table.items() if not isinstance(v, dict)}
            if plain:
                lines += ["", f"[{section}.{name}]"] + [f"{k} = {scalar(v)}" for k, v in plain.items()]
            for metric, scoped in table.get("metric", {}).items() if section == "modality" else ():
                lines += ["", f"[{section}.{name}.metric.{metric}]"] + [f"{k} = {scalar(v)}" for k, v in scoped.items()]
    return "\n".join(lines) + "\n"
