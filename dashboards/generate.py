"""The Grafana dashboards in dashboards/grafana/, generated with grafana-foundation-sdk.

    .venv/bin/python dashboards/generate.py          # write both JSON files
    .venv/bin/python dashboards/generate.py --check  # exit 1 if a file differs

The JSON files are this script's output: change the dashboards here, never by
hand. tests/test_dashboards.py regenerates them and fails on any difference.

The SDK (``pip install -e '.[dashboards]'``) is generated from Grafana's own
schemas, so the panels, options and queries it builds are typed: a misspelt
option or a wrong enum value fails here, not in Grafana. The builders of
panels, queries and the dashboard frame are in dashboards/panels.py (with the
fields added outside the SDK's schemas); this script assembles the two
dashboards and writes them.

Panels use the series the exporter serves (monitor/publishing/exporter.py,
docs/architecture.md "Prometheus series") and the recording rules of
dashboards/prometheus/collapse.rules.yml, and always the ``$datasource``
variable.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DataTransformerConfig, FieldColorModeId, ValueMap, ValueMappingResult,
)

OUT_DIR = Path(__file__).resolve().parent / "grafana"

# dashboards/ is not a package: panels.py is found next to this file, also when it is imported by path (tests).
if str(OUT_DIR.parent) not in sys.path:
    sys.path.insert(0, str(OUT_DIR.parent))

from panels import (  # noqa: E402
    AUDIT_AGE_STEPS, CUSUM_WARNING, RISK_STEPS, SCRAPE_TIMEOUT_S, ZSCORE_WARNING, _alerts_annotation, _bargauge,
    _color, _fixed, _frame, _loop_link, _organize, _pos, _prometheus_annotation, _prop, _query, _query_variable,
    _risk_column, _stat, _state_mappings, _state_thresholds, _state_timeline, _table, _thresholds, _timeseries,
    _to_dict, _up_mappings,
)


# -- the overview ------------------------------------------------------------------------------

def overview_dashboard() -> dict:
    """uid collapse-overview: every loop at a glance, then over time, then the exporter."""
    L = '{loop=~"$loop"}'
    d = (_frame("collapse-overview", "collapse-monitor / overview",
                "All loops: status, collapse risk, last round, time since the last audit, active collapse alerts.")
         .with_variable(_query_variable("loop", "Loop", "label_values(collapse_round, loop)", multi=True))
         .with_variable(_query_variable("metric", "Metric",
                                        'label_values(collapse_metric_value{loop=~"$loop"}, metric)', multi=True))
         .annotation(_alerts_annotation('loop=~"$loop"')))

    # Row 1: the numbers.
    d = (d.with_panel(_stat(1, "Loops", "Loops in the store (collapse_round).", _pos(0, 0, 4, 4),
                            f"count(collapse_round{L})", _thresholds((None, "green"))))
         .with_panel(_stat(2, "Critical loops", "Loops whose worst metric state is critical.", _pos(4, 0, 4, 4),
                           f"count(max by (loop) (collapse_alert_state{L}) == 2) or vector(0)",
                           _thresholds((None, "green"), (1, "red"))))
         .with_panel(_stat(3, "Warning loops", "Loops whose worst metric state is warning.", _pos(8, 0, 4, 4),
                           f"count(max by (loop) (collapse_alert_state{L}) == 1) or vector(0)",
                           _thresholds((None, "green"), (1, "orange"))))
         .with_panel(_stat(4, "Highest risk", "The highest collapse risk of the selected loops at their latest rounds.",
                           _pos(12, 0, 4, 4), f"max(collapse_loop_risk{L})", _thresholds(*RISK_STEPS),
                           unit="percentunit"))
         .with_panel(_stat(5, "Exporter", "Whether Prometheus can scrape every collapse-monitor target (up).",
                           _pos(16, 0, 4, 4), 'min(up{job="collapse-monitor"})',
                           _thresholds((None, "red"), (1, "green")), mappings=_up_mappings("DOWN", "UP")))
         .with_panel(_stat(6, "Store", "Whether the exporter could read the trajectory store (collapse_up).",
                           _pos(20, 0, 4, 4), "min(collapse_up)", _thresholds((None, "red"), (1, "green")),
                           mappings=_up_mappings("UNREADABLE", "READABLE"))))

    # The loops table: one row per loop, merged from four instant queries.
    loops = (_table(7, "Loops", "Status (worst metric state), collapse risk, last audited round and time since the "
                    "last audit, per loop. Click a loop for its drill-down.", _pos(0, 4, 24, 8), [
                        _query("A", f"max by (loop) (collapse_alert_state{L})", instant=True, as_table=True),
                        _query("B", f"max by (loop) (collapse_loop_risk{L})", instant=True, as_table=True),
                        _query("C", f"max by (loop) (collapse_round{L})", instant=True, as_table=True),
                        _query("D", f"max by (loop) (time() - collapse_last_audit_timestamp_seconds{L})",
                               instant=True, as_table=True)],
                    sort_by="Risk", desc=True)
             .override_by_name("loop", [_loop_link()])
             .override_by_name("Status", [_prop("mappings", _state_mappings()),
                                          _prop("thresholds", _state_thresholds().build()),
                                          _prop("custom.cellOptions", common.TableColoredBackgroundCellOptions())])
             .override_by_name("Risk", _risk_column())
             .override_by_name("Last round", [_prop("decimals", 0)])
             .override_by_name("Since last audit", [
                 _prop("unit", "s"), _prop("thresholds", _thresholds(*AUDIT_AGE_STEPS).build()),
                 _prop("custom.cellOptions", common.TableColorTextCellOptions())])
             .with_transformation(DataTransformerConfig(id_val="merge", options={}))
             .with_transformation(_organize(
                 excludeByName={"Time": True},
                 renameByName={"Value #A": "Status", "Value #B": "Risk", "Value #C": "Last round",
                               "Value #D": "Since last audit"},
                 indexByName={"loop": 0, "Value #A": 1, "Value #B": 2, "Value #C": 3, "Value #D": 4})))
    alerts = (_table(8, "Active alerts", "Collapse alerts that Prometheus evaluates as pending or firing (ALERTS). "
                     "What each means and what to do: docs/runbook.md.", _pos(0, 12, 24, 6),
                     [_query("A", 'ALERTS{alertname=~"Collapse.*"}', instant=True, as_table=True)],
                     sort_by="severity", desc=False)
              .override_by_name("severity", [
                  _prop("mappings", [ValueMap(options={"critical": ValueMappingResult(color="red", index=0),
                                                       "warning": ValueMappingResult(color="orange", index=1)})]),
                  _prop("custom.cellOptions", common.TableColoredBackgroundCellOptions())])
              .with_transformation(_organize(
                  excludeByName={"Time": True, "Value": True, "__name__": True},
                  indexByName={"alertname": 0, "alertstate": 1, "severity": 2, "loop": 3, "family": 4})))
    d = d.with_panel(loops).with_panel(alerts)

    # Over time.
    d = (d.with_panel(_timeseries(
            9, "Collapse risk", "Collapse risk at each loop's latest round, 0 to 1 (0.5: one family at its threshold), "
            "and its 1-hour maximum (recording rule).", _pos(0, 18, 12, 8), [
                _query("A", f"collapse_loop_risk{L}", "{{loop}}"),
                _query("B", f"loop:collapse_loop_risk:max_over_time_1h{L}", "{{loop}} (1h max)")],
            unit="percentunit", thresholds=_thresholds(*RISK_STEPS))
            .override_by_regexp(r".*\(1h max\)", [
                _prop("custom.lineStyle", common.LineStyle(fill="dash", dash=[10, 10]))]))
         .with_panel(_timeseries(
             10, "Risk by family", "Each family's part of the risk (families with no risk are hidden).",
             _pos(12, 18, 12, 8), [_query("A", f"collapse_family_risk{L} > 0", "{{loop}} {{family}}")],
             unit="percentunit"))
         .with_panel(_state_timeline(
             11, "Loop status", "Worst metric state per loop over time.", _pos(0, 26, 12, 7),
             _query("A", f"max by (loop) (collapse_alert_state{L})", "{{loop}}")))
         .with_panel(_bargauge(
             12, "Time since last audit",
             "Seconds since each loop's last audit. CollapseAuditStale fires past 6 hours.",
             _pos(12, 26, 6, 7),
             _query("A", f"time() - collapse_last_audit_timestamp_seconds{L}", "{{loop}}", instant=True))
             .unit("s").thresholds(_thresholds(*AUDIT_AGE_STEPS)).color_scheme(_color(FieldColorModeId.THRESHOLDS))
             .min(0))
         .with_panel(_bargauge(
             13, "Last round", "Highest audited round of each loop.", _pos(18, 26, 6, 7),
             _query("A", f"collapse_round{L}", "{{loop}}", instant=True))
             .decimals(0).color_scheme(_color(FieldColorModeId.FIXED, "blue")).min(0))
         .with_panel(_bargauge(
             14, "Steepest declines", "The 10 most negative slope z-scores (slope over its standard error; negative is "
             "the bad direction). The default warning threshold is -3.", _pos(0, 33, 12, 8),
             _query("A", 'bottomk(10, collapse_metric_zscore{loop=~"$loop", metric=~"$metric"} < 0)',
                    "{{loop}} {{metric}}", instant=True))
             .thresholds(_thresholds((None, "red"), (ZSCORE_WARNING, "orange"), (-1, "green")))
             .color_scheme(_color(FieldColorModeId.THRESHOLDS)).decimals(1))
         .with_panel(_timeseries(
             15, "Audits, by any process", "Audits of every loop, by any process (collapse_audits_total, "
             "collapse_audit_failures_total, counted in the store), and the 90th percentile of their wall time.",
             _pos(12, 33, 12, 8), [
                 _query("A", "sum(increase(collapse_audits_total[$__rate_interval]))", "audits"),
                 _query("B", "sum(increase(collapse_audit_failures_total[$__rate_interval]))", "failures"),
                 _query("C", "histogram_quantile(0.9, sum by (le) "
                             "(rate(collapse_audit_duration_seconds_bucket[$__rate_interval])))", "p90 duration (s)")])
             .override_by_name("p90 duration (s)", [_prop("unit", "s"),
                                                    _prop("custom.axisPlacement", common.AxisPlacement.RIGHT)])))

    # Alarm signals, what drives the risk, the watch queue and the exporter's own cost.
    d = (d.with_panel(_state_timeline(
            16, "Alarm signals", "The collapse and drift alarm signals of each loop over time (collapse_signal_state): "
            "CollapseWarning and CollapseCritical follow the collapse signal, CollapseDriftDetected the drift signal.",
            _pos(0, 41, 12, 8),
            _query("A", f"max by (loop, signal) (collapse_signal_state{L})", "{{loop}} {{signal}}")))
         .with_panel(_table(
             17, "Risk and its driving family", "Each loop's collapse risk at its latest round and the family that "
             "drives it: the family with the highest part of the risk (none while no family has any).",
             _pos(12, 41, 12, 8), [
                 _query("A", f"max by (loop) (collapse_loop_risk{L})", instant=True, as_table=True),
                 _query("B", f"max by (loop, family) (topk by (loop) (1, collapse_family_risk{L} > 0))",
                        instant=True, as_table=True)],
             sort_by="Risk", desc=True)
             .override_by_name("loop", [_loop_link()])
             .override_by_name("Risk", _risk_column())
             .override_by_name("Family risk", [_prop("unit", "percentunit"), _prop("decimals", 2)])
             .with_transformation(DataTransformerConfig(id_val="merge", options={}))
             .with_transformation(_organize(
                 excludeByName={"Time": True},
                 renameByName={"Value #A": "Risk", "family": "Driving family", "Value #B": "Family risk"},
                 indexByName={"loop": 0, "Value #A": 1, "family": 2, "Value #B": 3})))
         .with_panel(_timeseries(
             18, "Watch queue", "Round files seen by `serve --watch`, per loop: pending (waiting to be complete or "
             "retried), refused (bad input, retried when the file changes) and audited in their current version "
             "(right axis). Loops without watched files are not shown.", _pos(0, 49, 12, 8), [
                 _query("A", f"collapse_watch_pending_files{L}", "{{loop}} pending"),
                 _query("B", f"collapse_watch_refused_files{L}", "{{loop}} refused"),
                 _query("C", f"collapse_watch_audited_files{L}", "{{loop}} audited")])
             .decimals(0).min(0)
             .override_by_regexp(".* audited", [_prop("custom.axisPlacement", common.AxisPlacement.RIGHT)])
             .override_by_regexp(".* refused", [_prop("color", _fixed("red"))]))
         .with_panel(_timeseries(
             19, "Scrape duration", "Seconds each exporter took to read the store at a scrape "
             "(collapse_scrape_duration_seconds; absent while the store is unreadable). A scrape slower than "
             f"Prometheus' scrape_timeout ({SCRAPE_TIMEOUT_S} s by default, the dashed line) fails: "
             "the exporter then counts as down.", _pos(12, 49, 12, 8),
             [_query("A", "collapse_scrape_duration_seconds", "{{instance}}")],
             unit="s", thresholds=_thresholds((None, "transparent"), (SCRAPE_TIMEOUT_S, "red")),
             legend_calcs=["lastNotNull", "max"])
             .min(0)))
    return _to_dict(d)


# -- one loop ----------------------------------------------------------------------------------

def loop_dashboard() -> dict:
    """uid collapse-loop: one loop, its metrics with intervals, their derivatives and alert states."""
    LM = '{loop="$loop", metric=~"$metric"}'
    d = (_frame("collapse-loop", "collapse-monitor / loop",
                "One loop: metric values with 95% intervals, derivatives, z-scores, CUSUM, rounds to threshold, "
                "alerts.")
         .with_variable(_query_variable("loop", "Loop", "label_values(collapse_round, loop)", multi=False))
         .with_variable(_query_variable("metric", "Metric", 'label_values(collapse_metric_value{loop="$loop"}, metric)',
                                        multi=True))
         .annotation(_alerts_annotation('loop="$loop"'))
         .annotation(_prometheus_annotation(
             "New round", "blue", 'changes(collapse_round{loop="$loop"}[$__rate_interval]) > 0', "new round",
             "loop {{loop}}", "loop")))

    d = (d.with_panel(_stat(1, "Status", "The loop's worst metric state.", _pos(0, 0, 4, 4),
                            'max(collapse_alert_state{loop="$loop"})', _state_thresholds(), mappings=_state_mappings()))
         .with_panel(_stat(2, "Collapse risk", "Collapse risk at the latest round, 0 to 1.", _pos(4, 0, 4, 4),
                           'collapse_loop_risk{loop="$loop"}', _thresholds(*RISK_STEPS), unit="percentunit"))
         .with_panel(_stat(3, "Last round", "Highest audited round.", _pos(8, 0, 4, 4), 'collapse_round{loop="$loop"}',
                           _thresholds((None, "green"))))
         .with_panel(_stat(4, "Since last audit", "Time since the loop's last audit.", _pos(12, 0, 4, 4),
                           'time() - collapse_last_audit_timestamp_seconds{loop="$loop"}',
                           _thresholds(*AUDIT_AGE_STEPS), unit="s"))
         .with_panel(_bargauge(5, "Risk by family", "Each family's part of the collapse risk.", _pos(16, 0, 8, 4),
                               _query("A", 'collapse_family_risk{loop="$loop"}', "{{family}}", instant=True),
                               orientation=common.VizOrientation.VERTICAL)
                     .unit("percentunit").min(0).max(1).thresholds(_thresholds(*RISK_STEPS))
                     .color_scheme(_color(FieldColorModeId.THRESHOLDS))))

    band_hidden = common.HideSeriesConfig(legend=True, tooltip=False, viz=False)
    d = (d.with_row(dash.Row("Metric values with 95% intervals").id(6).collapsed(False).grid_pos(_pos(0, 4, 24, 1)))
         .with_panel(_timeseries(
             7, "$metric", "The metric's value at each loop's latest round (a step per audited round) with its 95% "
             "bootstrap interval.", _pos(0, 5, 8, 7), [
                 _query("A", 'collapse_metric_value{loop="$loop", metric="$metric"}', "value"),
                 _query("B", 'collapse_metric_ci_low{loop="$loop", metric="$metric"}', "95% low"),
                 _query("C", 'collapse_metric_ci_high{loop="$loop", metric="$metric"}', "95% high")])
             .override_by_name("95% high", [
                 _prop("custom.fillBelowTo", "95% low"), _prop("custom.lineWidth", 0), _prop("custom.fillOpacity", 20),
                 _prop("custom.hideFrom", band_hidden), _prop("color", _fixed("blue"))])
             .override_by_name("95% low", [
                 _prop("custom.lineWidth", 0), _prop("custom.hideFrom", band_hidden), _prop("color", _fixed("blue"))])
             .override_by_name("value", [_prop("custom.lineWidth", 2), _prop("color", _fixed("dark-blue"))])
             .repeat("metric").repeat_direction("h").max_per_row(3)))

    d = (d.with_row(dash.Row("Derivatives and alert state").id(8).collapsed(False).grid_pos(_pos(0, 12, 24, 1)))
         .with_panel(_state_timeline(
             9, "Alert state by metric", "Each metric's alert state over time: 0 ok, 1 warning, 2 critical.",
             _pos(0, 13, 24, 7), _query("A", f"collapse_alert_state{LM}", "{{metric}}")))
         .with_panel(_timeseries(
             10, "First difference (delta)", "Change of each metric from the previous audited round. One round's "
             "change is mostly noise.", _pos(0, 20, 12, 8),
             [_query("A", f"collapse_metric_delta{LM}", "{{metric}}")]))
         .with_panel(_timeseries(
             11, "Theil-Sen slope per round", "Robust slope per round over the rule's window (default 12 rounds).",
             _pos(12, 20, 12, 8), [_query("A", f"collapse_metric_slope{LM}", "{{metric}}")]))
         .with_panel(_timeseries(
             12, "Slope z-score", "Slope over its standard error, oriented so that negative is the bad direction. "
             "The default warning threshold is -3 (z_h, times the calibration's threshold_scale).", _pos(0, 28, 12, 8),
             [_query("A", f"collapse_metric_zscore{LM}", "{{metric}}")],
             thresholds=_thresholds((None, "red"), (ZSCORE_WARNING, "transparent"))))
         .with_panel(_timeseries(
             13, "CUSUM", "CUSUM of standardised bad-direction changes. The default warning threshold is 4 (cusum_h).",
             _pos(12, 28, 12, 8), [_query("A", f"collapse_metric_cusum{LM}", "{{metric}}")],
             thresholds=_thresholds((None, "transparent"), (CUSUM_WARNING, "red"))))
         .with_panel(_bargauge(
             14, "Rounds to threshold", "Forecast rounds until each metric's Theil-Sen line crosses its threshold "
             "(0: crossed). Metrics whose slope points away have no forecast and are not shown.", _pos(0, 36, 12, 8),
             _query("A", f"collapse_rounds_to_threshold{LM}", "{{metric}}", instant=True))
             .decimals(1).min(0).color_scheme(_color(FieldColorModeId.THRESHOLDS))
             .thresholds(_thresholds((None, "red"), (3, "orange"), (10, "green"))))
         .with_panel(_timeseries(
             15, "Steepest decline per family", "The most negative slope z-score of each family (recording rule "
             "loop_family:collapse_metric_zscore:min).", _pos(12, 36, 12, 8),
             [_query("A", 'loop_family:collapse_metric_zscore:min{loop="$loop"}', "{{family}}")],
             thresholds=_thresholds((None, "red"), (ZSCORE_WARNING, "transparent")))))
    return _to_dict(d)


# -- files -------------------------------------------------------------------------------------

DASHBOARDS = {"collapse-overview.json": overview_dashboard, "collapse-loop.json": loop_dashboard}


def render(dashboard: dict) -> str:
    """The committed form: keys sorted, two-space indent, a trailing newline (stable, diff-friendly)."""
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a file is not up to date")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help=f"directory to write to (default {OUT_DIR})")
    args = parser.parse_args(argv)
    stale = []
    for name, build in DASHBOARDS.items():
        path = args.out / name
        text = render(build())
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"not up to date: {', '.join(stale)} (run: python dashboards/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
