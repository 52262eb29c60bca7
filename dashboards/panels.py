"""The panel and query builders of dashboards/generate.py (grafana-foundation-sdk).

Queries, thresholds, value mappings, the panel kinds both dashboards use and the dashboard
frame (variables, annotations, links); generate.py assembles the dashboards from them.

Two kinds of field that the Prometheus data source reads are not in the SDK's schemas and are
added as they are (``_with_fields``): the annotation query's ``step``, ``titleFormat``,
``textFormat``, ``tagKeys`` and ``useValueForTime``, and a query variable's ``definition`` (the
query shown in the variable editor).
"""

from __future__ import annotations

import json
from typing import Any

from grafana_foundation_sdk.builders import bargauge, common as common_b, dashboard as dash, prometheus
from grafana_foundation_sdk.builders import stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DashboardLinkType,
    DataSourceRef,
    DataTransformerConfig,
    DynamicConfigValue,
    FieldColorModeId,
    GridPos,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableHide,
    VariableModel,
    VariableOption,
    VariableRefresh,
    VariableSort,
    VariableType,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat, QueryEditorMode

# The provisioned data source (grafana/provisioning/datasources/collapse-prometheus.yml): the default
# of the $datasource variable.
DATASOURCE_UID = "collapse-prometheus"
DATASOURCE_NAME = "Prometheus (collapse-monitor)"
TAG = "collapse-monitor"
LOOP_DASHBOARD_UID = "collapse-loop"

# Levels of collapse_alert_state and collapse_signal_state.
STATES = ((0, "OK", "green"), (1, "WARNING", "orange"), (2, "CRITICAL", "red"))
RISK_STEPS = ((None, "green"), (0.5, "orange"), (0.75, "red"))  # CollapseRiskHigh: above 0.75
AUDIT_AGE_STEPS = ((None, "green"), (21600, "orange"), (86400, "red"))  # CollapseAuditStale: past 6 h
ZSCORE_WARNING = -3  # z_h of the default rules
CUSUM_WARNING = 4  # cusum_h of the default rules
SCRAPE_TIMEOUT_S = 10  # Prometheus' default scrape_timeout (docker/prometheus.yml keeps it)


# -- fields the SDK's schemas do not have ------------------------------------------------

class _WithFields:
    """An SDK model whose JSON carries extra fields (see the module docstring for which and why)."""

    def __init__(self, model: Any, fields: dict[str, Any]):
        self.model = model
        self.fields = fields

    def to_json(self) -> dict[str, object]:
        return {**self.model.to_json(), **self.fields}


class _with_fields(cogbuilder.Builder[Any]):
    """Wraps a builder so that what it builds is encoded with ``fields`` added."""

    def __init__(self, builder: cogbuilder.Builder[Any], **fields: Any):
        self.builder = builder
        self.fields = fields

    def build(self) -> Any:
        return _WithFields(self.builder.build(), self.fields)


class _model(cogbuilder.Builder[Any]):
    """An SDK model built directly, for a field its builder has no method for."""

    def __init__(self, model: Any):
        self.model = model

    def build(self) -> Any:
        return self.model


# -- small pieces ------------------------------------------------------------------------

def _ds() -> DataSourceRef:
    return DataSourceRef(type_val="prometheus", uid="${datasource}")


def _pos(x: int, y: int, w: int, h: int) -> GridPos:
    return GridPos(x=x, y=y, w=w, h=h)


def _query(ref: str, expr: str, legend: str = "__auto", *, instant: bool = False,
           as_table: bool = False) -> prometheus.Dataquery:
    q = (prometheus.Dataquery().datasource(_ds()).ref_id(ref).expr(expr).legend_format(legend)
         .editor_mode(QueryEditorMode.CODE))
    q = q.instant() if instant else q.range()
    if as_table:
        q = q.format(PromQueryFormat.TABLE)
    return q


def _thresholds(*steps: tuple[float | None, str]) -> dash.ThresholdsConfig:
    return dash.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(
        [Threshold(value=value, color=color) for value, color in steps])


def _state_thresholds() -> dash.ThresholdsConfig:
    return _thresholds((None, "green"), *((level, color) for level, _, color in STATES[1:]))


def _state_mappings() -> list[ValueMap]:
    return [ValueMap(options={str(level): ValueMappingResult(text=text, color=color, index=level)
                              for level, text, color in STATES})]


def _color(mode: FieldColorModeId, fixed: str | None = None) -> dash.FieldColor:
    c = dash.FieldColor().mode(mode)
    return c.fixed_color(fixed) if fixed else c


def _fixed(color: str) -> Any:
    return _color(FieldColorModeId.FIXED, color).build()


def _prop(id_: str, value: Any) -> DynamicConfigValue:
    return DynamicConfigValue(id_val=id_, value=value)


def _last_not_null() -> common_b.ReduceDataOptions:
    return common_b.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def _loop_link() -> DynamicConfigValue:
    """A loop column's data link to the loop dashboard, keeping the data source and time range."""
    return _prop("links", [{
        "title": "Open loop ${__value.text}",
        "targetBlank": False,
        "url": f"/d/{LOOP_DASHBOARD_UID}/collapse-monitor-loop?var-loop=${{__value.raw}}"
               "&${datasource:queryparam}&${__url_time_range}",
    }])


def _risk_column() -> list[DynamicConfigValue]:
    return [_prop("unit", "percentunit"), _prop("min", 0), _prop("max", 1),
            _prop("thresholds", _thresholds(*RISK_STEPS).build()),
            _prop("custom.cellOptions", common.TableBarGaugeCellOptions(mode=common.BarGaugeDisplayMode.BASIC))]


# -- panels ------------------------------------------------------------------------------

def _stat(id_: int, title: str, description: str, pos: GridPos, expr: str, thresholds: dash.ThresholdsConfig, *,
          unit: str | None = None, mappings: list[ValueMap] | None = None) -> stat.Panel:
    p = (stat.Panel().id(id_).title(title).description(description).datasource(_ds()).grid_pos(pos)
         .with_target(_query("A", expr, instant=True))
         .mappings(mappings or []).thresholds(thresholds).color_scheme(_color(FieldColorModeId.THRESHOLDS))
         .reduce_options(_last_not_null())
         .color_mode(common.BigValueColorMode.BACKGROUND).graph_mode(common.BigValueGraphMode.NONE)
         .text_mode(common.BigValueTextMode.AUTO).justify_mode(common.BigValueJustifyMode.AUTO)
         .orientation(common.VizOrientation.AUTO))
    return p.unit(unit) if unit else p


def _up_mappings(down: str, up: str) -> list[ValueMap]:
    return [ValueMap(options={"0": ValueMappingResult(text=down, color="red", index=0),
                              "1": ValueMappingResult(text=up, color="green", index=1)})]


def _timeseries(id_: int, title: str, description: str, pos: GridPos, targets: list[prometheus.Dataquery], *,
                unit: str | None = None, thresholds: dash.ThresholdsConfig | None = None,
                legend_calcs: list[str] | None = None) -> timeseries.Panel:
    """A step line per series (values change once a round), legend as a table on the right."""
    p = (timeseries.Panel().id(id_).title(title).description(description).datasource(_ds()).grid_pos(pos)
         .targets(targets)
         .draw_style(common.GraphDrawStyle.LINE).line_interpolation(common.LineInterpolation.STEP_AFTER)
         .line_width(1).fill_opacity(0).show_points(common.VisibilityMode.NEVER).span_nulls(False)
         .color_scheme(_color(FieldColorModeId.PALETTE_CLASSIC))
         .legend(common_b.VizLegendOptions().display_mode(common.LegendDisplayMode.TABLE)
                 .placement(common.LegendPlacement.RIGHT).show_legend(True)
                 .calcs(legend_calcs or ["lastNotNull"]))
         .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                  .sort(common.SortOrder.DESCENDING)))
    if thresholds is not None:
        p = p.thresholds(thresholds).thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED))
    return p.unit(unit) if unit else p


def _bargauge(id_: int, title: str, description: str, pos: GridPos, target: prometheus.Dataquery, *,
              orientation: common.VizOrientation = common.VizOrientation.HORIZONTAL) -> bargauge.Panel:
    return (bargauge.Panel().id(id_).title(title).description(description).datasource(_ds()).grid_pos(pos)
            .with_target(target)
            .orientation(orientation).display_mode(common.BarGaugeDisplayMode.BASIC).show_unfilled(True)
            .reduce_options(_last_not_null()))


def _state_timeline(id_: int, title: str, description: str, pos: GridPos,
                    target: prometheus.Dataquery) -> statetimeline.Panel:
    """0 ok, 1 warning, 2 critical as coloured bands, one row per series."""
    return (statetimeline.Panel().id(id_).title(title).description(description).datasource(_ds()).grid_pos(pos)
            .with_target(target)
            .mappings(_state_mappings()).thresholds(_state_thresholds())
            .color_scheme(_color(FieldColorModeId.THRESHOLDS))
            .fill_opacity(80).line_width(0)
            .show_value(common.VisibilityMode.NEVER).merge_values(True).row_height(0.8)
            .align_value(common.TimelineValueAlignment.LEFT)
            .legend(common_b.VizLegendOptions().show_legend(False))
            # Grafana's own default; the SDK's would sort the tooltip ascending.
            .tooltip(common_b.VizTooltipOptions().mode(common.TooltipDisplayMode.SINGLE).sort(common.SortOrder.NONE)))


def _table(id_: int, title: str, description: str, pos: GridPos, targets: list[prometheus.Dataquery], *,
           sort_by: str, desc: bool) -> table.Panel:
    return (table.Panel().id(id_).title(title).description(description).datasource(_ds()).grid_pos(pos)
            .targets(targets)
            .align(common.FieldTextAlignment.AUTO).cell_options(common.TableAutoCellOptions())
            .show_header(True).sort_by([common_b.TableSortByFieldState().display_name(sort_by).desc(desc)])
            .cell_height(common.TableCellHeight.SM))


def _organize(**options: Any) -> DataTransformerConfig:
    return DataTransformerConfig(id_val="organize", options=options)


# -- dashboard frame -----------------------------------------------------------------------

def _datasource_variable() -> _model:
    return _model(VariableModel(
        type_val=VariableType.DATASOURCE, name="datasource", label="Data source", query="prometheus",
        current=VariableOption(selected=False, text=DATASOURCE_NAME, value=DATASOURCE_UID),
        hide=VariableHide.DONT_HIDE, include_all=False, multi=False, options=[],
        refresh=VariableRefresh.ON_DASHBOARD_LOAD, regex="", skip_url_sync=False))


def _query_variable(name: str, label: str, query: str, *, multi: bool) -> _with_fields:
    """``label_values`` of the selected data source; ``multi`` also offers All (``.*``), selected by default."""
    v = (dash.QueryVariable(name).label(label).datasource(_ds())
         .query({"query": query, "refId": "StandardVariableQuery"})
         .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED).sort(VariableSort.ALPHABETICAL_ASC)
         .multi(multi).include_all(multi).hide(VariableHide.DONT_HIDE).regex("").options([]))
    if multi:
        v = v.all_value(".*").current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    return _with_fields(v, definition=query)


def _builtin_annotation() -> dash.AnnotationQuery:
    return (dash.AnnotationQuery().built_in(1).type("dashboard").name("Annotations & Alerts")
            .datasource(DataSourceRef(type_val="grafana", uid="-- Grafana --"))
            .enable(True).hide(True).icon_color("rgba(0, 211, 255, 1)"))


def _prometheus_annotation(name: str, color: str, expr: str, title: str, text: str, tags: str) -> _with_fields:
    a = dash.AnnotationQuery().name(name).datasource(_ds()).enable(True).hide(False).icon_color(color).expr(expr)
    return _with_fields(a, step="1m", titleFormat=title, textFormat=text, tagKeys=tags, useValueForTime=False)


def _alerts_annotation(loop_matcher: str) -> _with_fields:
    return _prometheus_annotation(
        "Collapse alerts", "red", f'ALERTS{{alertname=~"Collapse.*", alertstate="firing", {loop_matcher}}}',
        "{{alertname}} ({{severity}})", "loop {{loop}} {{family}}", "severity,loop")


def _frame(uid: str, title: str, description: str) -> dash.Dashboard:
    """What both dashboards share: a read-only, provisioned dashboard of the last 7 days."""
    return (dash.Dashboard(title).uid(uid).description(description).tags([TAG]).readonly()
            .tooltip(DashboardCursorSync.CROSSHAIR).timezone("browser").version(1)
            .time("now-7d", "now").refresh("1m").fiscal_year_start_month(0).live_now(False).week_start("")
            .annotation(_builtin_annotation())
            .link(dash.DashboardLink("collapse-monitor dashboards").type(DashboardLinkType.DASHBOARDS).tags([TAG])
                  .as_dropdown(False).include_vars(False).keep_time(True).target_blank(False)
                  .icon("external link"))
            .with_variable(_datasource_variable()))


def _to_dict(builder: dash.Dashboard) -> dict:
    return json.loads(json.dumps(builder.build(), cls=JSONEncoder))
