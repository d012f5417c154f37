#!/usr/bin/env python3
"""Writes deploy/grafana/dashboards/*.json, the dashboards Grafana provisions.

The dashboards are committed as JSON (what Grafana reads); this script is
their source, so that every panel is one line of intent here rather than a
hundred lines of JSON edited by hand.  Run it after changing it:

    python3 deploy/grafana/generate.py [OUT_DIR]

(OUT_DIR defaults to deploy/grafana/dashboards; the test regenerates into a
temporary directory and compares, so the JSON never drifts from here.)

Every query is InfluxQL against the layout ndtpipe's UDR writes
(docs/DATA-MODEL.md, udr/udr_influx.c): one measurement per entity type,
tag `id` (the entity URN), one field per attribute; relationships in the
measurement `ndt_relationship` (tags `subject`, `predicate`; fields
`object`, `valid_to_ms` once closed), at their `valid_from`.  The
harmonizer writes `twinState` (a string field) only when it changes and a
relationship only when its object changes, so "the state now" is the last
transition up to the end of the range, not the last one inside it, and
update counts use an attribute every scrape carries (HEARTBEAT).  InfluxQL has no joins, so every panel reads one
measurement; features that divide a pod quantity by the pod count count
the pods reporting in each interval (a subquery grouped by `id`).
tests/integration/90-grafana-queries.sh runs every query of these files
against a real influxd filled through the UDR library.
"""
import json
import os
import sys

DS = {"type": "influxdb", "uid": "ndt-influxdb"}
ENTITY_TYPES = ["InfrastructureElement", "ServiceComponent", "Service",
                "VirtualComputeElement", "NetworkFunction", "NetworkService"]
# unbound is the state before any data: the harmonizer stores no point for
# it, so there is nothing to count (docs/DEPLOY.md).
STATES = ["synchronized", "bound", "outOfSync"]
STATE_COLORS = {"synchronized": "green", "bound": "blue", "outOfSync": "red"}
# An attribute of each measured type that every scrape of its source sets:
# its points count the entity's updates.  The network function and network
# service are static (written once at start).
HEARTBEAT = {"ServiceComponent": "queueDepth", "Service": "currentUsers",
             "InfrastructureElement": "availableRam",
             "VirtualComputeElement": "virtualMemoryAllocation"}
# The last transition of each entity up to the end of the time range.
LATEST_STATE = ('SELECT last("twinState") AS "state" FROM /^$type$/ WHERE time <= ${__to}ms '
                'GROUP BY "id"')

# Pods of the service(s) chosen in $service: a pod's local id is
# <namespace>.<deployment>-<replicaset hash>-<suffix> and the service's
# <namespace>.<deployment> (docs/DATA-MODEL.md), so the service's local id,
# extracted by the variable's regex, prefixes its pods' ids.
PODS = '"id" =~ /^urn:ngsi-ld:ServiceComponent:$service-/'
SERVICE = '"id" =~ /^urn:ngsi-ld:Service:$service$/'


class Dashboard:
    def __init__(self, uid, title, description, tags):
        self.uid, self.title, self.description = uid, title, description
        self.tags = ["ndtpipe"] + tags
        self.panels, self.variables, self.annotations = [], [], []
        self.x = self.y = self.row_h = 0

    def _place(self, w, h):
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        pos = {"x": self.x, "y": self.y, "w": w, "h": h}
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def row(self, title):
        if self.x:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.panels.append({"type": "row", "title": title, "collapsed": False,
                            "id": len(self.panels) + 1, "panels": [],
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}})
        self.y += 1

    def panel(self, kind, title, description, queries, w=12, h=8, unit=None,
              table=False, options=None, field_config=None, overrides=None):
        targets = []
        for i, q in enumerate(queries):
            alias = None
            if isinstance(q, tuple):
                q, alias = q
            t = {"refId": chr(ord("A") + i), "datasource": DS, "query": q,
                 "rawQuery": True, "resultFormat": "table" if table else "time_series"}
            if alias:
                t["alias"] = alias
            targets.append(t)
        defaults = {"unit": unit} if unit else {}
        if kind == "stat" and "count(" in queries[0]:
            defaults["noValue"] = "0"  # a count of nothing is no row in InfluxQL
        if field_config:
            defaults.update(field_config)
        p = {"id": len(self.panels) + 1, "type": kind, "title": title,
             "description": description, "datasource": DS,
             "gridPos": self._place(w, h), "targets": targets,
             "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
             "options": options or {}}
        self.panels.append(p)
        return p

    def text(self, title, content, w=24, h=4):
        self.panels.append({"id": len(self.panels) + 1, "type": "text", "title": title,
                            "gridPos": self._place(w, h),
                            "options": {"mode": "markdown", "content": content}})

    def query_variable(self, name, label, query, regex="", include_all=True):
        v = {"name": name, "label": label, "type": "query", "datasource": DS,
             "query": query, "definition": query, "regex": regex, "refresh": 2,
             "multi": include_all, "includeAll": include_all, "sort": 1,
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]}
             if include_all else {}, "options": [], "hide": 0}
        self.variables.append(v)

    def annotation(self, name, query, color, text_column):
        # Grafana 10's InfluxDB annotation model is the target (what its
        # annotation editor saves); the legacy top-level query and columns
        # are kept equal for older Grafanas.
        self.annotations.append({"name": name, "datasource": DS, "enable": True,
                                 "iconColor": color, "query": query, "textColumn": text_column,
                                 "target": {"refId": "Anno", "query": query, "rawQuery": True,
                                            "fromAnnotations": True, "textEditor": True,
                                            "textColumn": text_column}})

    def json(self):
        builtin = {"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                   "enable": True, "hide": True, "iconColor": "rgba(0, 211, 255, 1)",
                   "name": "Annotations & Alerts", "type": "dashboard"}
        return {"uid": self.uid, "title": self.title, "description": self.description,
                "tags": self.tags, "editable": True, "schemaVersion": 38, "version": 1,
                "time": {"from": "now-15m", "to": "now"}, "refresh": "10s",
                "timezone": "", "graphTooltip": 1, "links": [
                    {"type": "dashboards", "tags": ["ndtpipe"], "asDropdown": True,
                     "title": "ndtpipe", "includeVars": False, "keepTime": True}],
                "annotations": {"list": [builtin] + self.annotations},
                "templating": {"list": self.variables}, "panels": self.panels}


def type_variable(d):
    # Entity types are the measurements whose name starts with a capital
    # (ndt_relationship does not).
    d.query_variable("type", "entity type", "SHOW MEASUREMENTS WITH MEASUREMENT =~ /^[A-Z]/")


def service_variable(d):
    d.query_variable("service", "service",
                     'SHOW TAG VALUES FROM "Service" WITH KEY = "id"',
                     regex="/^urn:ngsi-ld:Service:(.+)$/")


def scaling_annotations(d):
    # Regime changes: the interval where the ready pods or the users changed.
    for field, what, color in (("readyReplicas", "ready pods", "orange"),
                               ("currentUsers", "users", "purple")):
        d.annotation(f"{what} changed",
                     f'SELECT "change" FROM (SELECT difference(last("{field}")) AS "change" '
                     f'FROM "Service" WHERE {SERVICE} AND $timeFilter GROUP BY time($__interval)) '
                     f'WHERE "change" <> 0', color, "change")


def state_count(state):
    """Entities whose latest twinState (as of the range's end) is state."""
    return (f'SELECT count("state") AS "{state}" FROM ({LATEST_STATE}) '
            f"WHERE \"state\" = '{state}'")


def transitions(state):
    """Transitions into state per interval (twinState points are transitions)."""
    return (f'SELECT count("twinState") AS "to {state}" FROM /^$type$/ '
            f"WHERE \"twinState\" = '{state}' AND $timeFilter GROUP BY time($__interval) fill(0)")


def state_overrides():
    return [{"matcher": {"id": "byRegexp", "options": f".*{s}.*"},
             "properties": [{"id": "color", "value": {"mode": "fixed", "fixedColor": c}}]}
            for s, c in STATE_COLORS.items()]


def telemetry():
    d = Dashboard("ndt-telemetry", "ndtpipe / Telemetry",
                  "Scrape health as the twin sees it: which sources are up, how many "
                  "samples reach the UDR, how often each entity is updated.",
                  ["telemetry"])
    type_variable(d)
    d.text("About", "Every scrape of a source that the harmonizer maps updates the entities "
           "it describes in the UDR (InfluxDB). A source that is **up** keeps its entities "
           "`bound` or `synchronized`; a source that stops answering leaves them `outOfSync`. "
           "The **update interval** of an entity is the time between two of its points: the "
           "scrape interval (20 ms by default) when the path is healthy. ndtpipe's own counters "
           "(scrapes, durations, Kafka delivery) are on each stage's `/metrics`, scraped by "
           "Prometheus in the compose stack (docs/METRICS.md).", h=3)
    d.panel("stat", "Sources up", "Entities whose latest twinState is bound or synchronized.",
            [f'SELECT count("state") AS "up" FROM ({LATEST_STATE}) '
             "WHERE \"state\" = 'bound' OR \"state\" = 'synchronized'"],
            w=6, h=5, options={"reduceOptions": {"calcs": ["lastNotNull"]},
                               "textMode": "value_and_name", "colorMode": "value"},
            field_config={"color": {"mode": "fixed", "fixedColor": "green"}})
    d.panel("stat", "Sources down", "Entities whose latest twinState is outOfSync: their source "
            "stopped answering or stopped carrying them.",
            [state_count("outOfSync")],
            w=6, h=5, options={"reduceOptions": {"calcs": ["lastNotNull"]},
                               "textMode": "value_and_name", "colorMode": "value"},
            field_config={"color": {"mode": "fixed", "fixedColor": "red"}})
    d.panel("timeseries", "Entity updates stored per second, by type",
            "Points per second written to the UDR for each measured type (counted on an "
            "attribute every scrape of its source sets).",
            [f'SELECT count("{f}") / $__interval_ms * 1000 AS "{t}" FROM "{t}" '
             f'WHERE $timeFilter GROUP BY time($__interval)' for t, f in HEARTBEAT.items()],
            w=12, h=5, unit="reqps")
    d.panel("timeseries", "Update interval per entity type (mean and max)",
            "Time between two consecutive updates of the same entity: the effective scrape "
            "interval. A max far above the mean is a missed scrape or a stall on the path.",
            [f'SELECT mean("gap") AS "{t} mean", max("gap") AS "{t} max" FROM (SELECT '
             f'elapsed("{f}", 1ms) AS "gap" FROM "{t}" WHERE $timeFilter GROUP BY "id") '
             f'WHERE $timeFilter GROUP BY time($__interval)' for t, f in HEARTBEAT.items()],
            w=12, h=8, unit="ms")
    d.panel("timeseries", "State transitions", "Entities entering outOfSync (source lost), "
            "bound (seen, or seen again, but not yet within the fidelity threshold) and "
            "synchronized, per interval.",
            [transitions(s) for s in ("outOfSync", "bound", "synchronized")], w=12, h=8,
            overrides=state_overrides(), field_config={"custom": {"drawStyle": "bars"}})
    d.panel("table", "State per entity, since", "Each entity's latest twinState and the time "
            "it entered it, oldest first.",
            [LATEST_STATE], w=24, h=9, table=True,
            options={"sortBy": [{"displayName": "Time", "desc": False}]})
    return d


def twin():
    d = Dashboard("ndt-twin", "ndtpipe / Twin state and graph",
                  "The twin's entities by state (paper 001: unbound, bound, synchronized, "
                  "outOfSync), its graph of relationships and the infrastructure it mirrors.",
                  ["twin"])
    type_variable(d)
    d.row("State")
    for s in STATES:
        d.panel("stat", f"Entities {s}", f"Entities whose latest twinState is {s}, by type.",
                [state_count(s)], w=8, h=5,
                options={"reduceOptions": {"calcs": ["lastNotNull"]},
                         "textMode": "value_and_name", "colorMode": "value"},
                field_config={"color": {"mode": "fixed", "fixedColor": STATE_COLORS[s]}})
    d.panel("timeseries", "State transitions", "Entities entering each state per interval "
            "(the harmonizer stores twinState when it changes).",
            [transitions(s) for s in STATES], w=24, h=8,
            overrides=state_overrides(), field_config={"custom": {"drawStyle": "bars"}})
    d.panel("table", "Entities", "Every entity of the selected types that has a state, its "
            "latest twinState and since when. An entity with no data yet (unbound) has none.",
            [LATEST_STATE], w=24, h=9, table=True)
    d.row("Graph")
    d.panel("table", "Relationships now (the graph's edges)",
            "The newest interval of every (subject, predicate) up to the end of the range: "
            "its object and since when (a new object ends the previous interval; "
            "valid_to_ms is set only on an interval ended explicitly).",
            ['SELECT "object", "valid_to_ms" FROM "ndt_relationship" WHERE time <= ${__to}ms '
             'GROUP BY "subject", "predicate" ORDER BY time DESC LIMIT 1'],
            w=24, h=10, table=True)
    d.panel("timeseries", "Relationship changes by predicate",
            "New relationship intervals per interval: a pod rescheduled to another node, a pod "
            "created, a service joining a network service.",
            ['SELECT count("object") AS "changes" FROM "ndt_relationship" WHERE $timeFilter '
             'GROUP BY time($__interval), "predicate"'],
            w=12, h=8, field_config={"custom": {"drawStyle": "bars"}})
    d.panel("table", "Relationship history", "Every relationship interval that started in the "
            "time range, newest first.",
            ['SELECT "subject", "predicate", "object", "valid_to_ms" FROM "ndt_relationship" '
             'WHERE $timeFilter ORDER BY time DESC LIMIT 200'],
            w=12, h=8, table=True)
    d.row("Infrastructure")
    d.panel("timeseries", "Nodes: CPU and RAM in use",
            "InfrastructureElement currentCpuUsage and currentRamUsagePct, percent.",
            ['SELECT mean("currentCpuUsage") AS "cpu", mean("currentRamUsagePct") AS "ram" '
             'FROM "InfrastructureElement" WHERE $timeFilter GROUP BY time($__interval), "id"'],
            w=12, h=8, unit="percent")
    d.panel("timeseries", "Containers: usage of their allocation",
            "VirtualComputeElement cpuUsageOfAllocation and memoryUsageOfAllocation, percent.",
            ['SELECT mean("cpuUsageOfAllocation") AS "cpu", mean("memoryUsageOfAllocation") AS '
             '"memory" FROM "VirtualComputeElement" WHERE $timeFilter '
             'GROUP BY time($__interval), "id"'],
            w=12, h=8, unit="percent")
    d.panel("timeseries", "Pods: CPU (cores)", "ServiceComponent currentCpuUsage: cores used by "
            "each pod's containers.",
            ['SELECT mean("currentCpuUsage") AS "cores" FROM "ServiceComponent" '
             'WHERE $timeFilter GROUP BY time($__interval), "id"'],
            w=12, h=8, unit="short")
    d.panel("timeseries", "Pods: working-set memory", "ServiceComponent currentMemoryUsage, "
            "megabytes.",
            ['SELECT mean("currentMemoryUsage") AS "MB" FROM "ServiceComponent" '
             'WHERE $timeFilter GROUP BY time($__interval), "id"'],
            w=12, h=8, unit="decmbytes")
    return d


def pods_per_interval(field, alias, scale=""):
    # mean over the service's pods divided by the pods reporting: the
    # paper's avg_* column over pods, then the indicator's "/ pods".
    return (f'SELECT {scale}mean("v") / count("v") AS "{alias}" FROM (SELECT mean("{field}") AS "v" '
            f'FROM "ServiceComponent" WHERE {PODS} AND $timeFilter '
            f'GROUP BY time($__interval), "id") WHERE $timeFilter GROUP BY time($__interval)')


def features():
    d = Dashboard("ndt-features", "ndtpipe / Features per regime",
                  "The feature vector of docs/FEATURES.md computed from the twin's state, with "
                  "the regime (users, pods) it was observed in.", ["features"])
    service_variable(d)
    scaling_annotations(d)
    d.text("About", "A **regime** is a (users, pods) pair. Users come from the Service's "
           "`currentUsers`, pods from its `readyReplicas`; the pod averages (the paper's `avg_*` "
           "columns) are means over the service's pods, and an indicator divided by pods "
           "divides by the pods reporting in the interval. Regime changes are annotations "
           "(orange: pods, purple: users). `ndtpipe features` computes the same indicators "
           "from the dataset CSV (`ndtpipe export`).", h=3)
    d.row("Regime")
    d.panel("state-timeline", "Regime (users, pods)", "Each band is one regime.",
            [f'SELECT last("currentUsers") AS "users", last("readyReplicas") AS "pods" '
             f'FROM "Service" WHERE {SERVICE} AND $timeFilter GROUP BY time($__interval)'],
            w=16, h=5, options={"showValue": "always", "mergeValues": True})
    d.panel("stat", "Regime now", "Latest users, desired and ready pods.",
            [f'SELECT last("currentUsers") AS "users", last("desiredReplicas") AS "desired pods", '
             f'last("readyReplicas") AS "ready pods" FROM "Service" WHERE {SERVICE} '
             f'AND $timeFilter'], w=8, h=5,
            options={"reduceOptions": {"calcs": ["lastNotNull"]},
                     "textMode": "value_and_name"})
    d.row("Indicators (paper Table II)")
    d.panel("timeseries", "workload_intensity = users / pods", "Demand per processing unit.",
            [f'SELECT mean("currentUsers") / mean("readyReplicas") AS "workload_intensity" '
             f'FROM "Service" WHERE {SERVICE} AND $timeFilter GROUP BY time($__interval)'],
            w=12, h=7)
    d.panel("timeseries", "congestion_index = avg_depth_on_enqueue / pods",
            "Queue pressure per pod.",
            [pods_per_interval("avgDepthOnEnqueue", "congestion_index")], w=12, h=7)
    d.panel("timeseries", "backlog_flow = avg_backlog_sec_est / pods",
            "Delay accumulation rate, seconds per pod.",
            [pods_per_interval("avgBacklogEstimate", "backlog_flow")], w=12, h=7, unit="s")
    d.panel("timeseries", "compute_pressure = avg_cpu_process_pct + avg_cpu_system_pct",
            "Aggregate CPU load, percent.",
            [f'SELECT mean("processCpuUsage") + mean("systemCpuUsage") AS "compute_pressure" '
             f'FROM "ServiceComponent" WHERE {PODS} AND $timeFilter GROUP BY time($__interval)'],
            w=12, h=7, unit="percent")
    d.panel("timeseries", "memory_density = avg_mem_system_pct / pods",
            "Memory use per unit of compute, percent per pod.",
            [pods_per_interval("systemMemoryUsage", "memory_density")], w=12, h=7)
    d.panel("timeseries", "Target: avg_total_infer_ms and log_latency",
            "The latency the models predict, and its log1p (the training target).",
            [f'SELECT mean("avgInferenceTime") AS "avg_total_infer_ms" FROM "ServiceComponent" '
             f'WHERE {PODS} AND $timeFilter GROUP BY time($__interval)',
             f'SELECT ln(mean("avgInferenceTime") + 1) AS "log_latency" FROM "ServiceComponent" '
             f'WHERE {PODS} AND $timeFilter GROUP BY time($__interval)'],
            w=12, h=7, unit="ms",
            overrides=[{"matcher": {"id": "byName", "options": "log_latency"},
                        "properties": [{"id": "custom.axisPlacement", "value": "right"},
                                       {"id": "unit", "value": "short"}]}])
    d.row("Raw telemetry per pod")
    for field, title, unit in (("avgDepthOnEnqueue", "avg_depth_on_enqueue", "short"),
                               ("avgBacklogEstimate", "avg_backlog_sec_est", "s"),
                               ("processCpuUsage", "avg_cpu_process_pct", "percent"),
                               ("systemMemoryUsage", "avg_mem_system_pct", "percent")):
        d.panel("timeseries", f"{title} ({field})", f"ServiceComponent {field} per pod.",
                [f'SELECT mean("{field}") AS "{title}" FROM "ServiceComponent" '
                 f'WHERE {PODS} AND $timeFilter GROUP BY time($__interval), "id"'],
                w=12, h=7, unit=unit)
    return d


def model_quality():
    d = Dashboard("ndt-model-quality", "ndtpipe / Model quality",
                  "The ground truth the functional models are judged on, and how far the "
                  "service's own backlog estimate (the models' physical baseline) is from it.",
                  ["models"])
    service_variable(d)
    scaling_annotations(d)
    obs = '"avgInferenceTime"'
    base = '1000 * "avgBacklogEstimate"'
    base_mean = '1000 * mean("avgBacklogEstimate")'
    where = f'WHERE {PODS} AND $timeFilter'
    d.text("About", "The trained models' accuracy, grades and validation live in the registry "
           "(`GET /v1/models`, `ndtpipe report`, docs/MODELS.md); they are not time series. "
           "What the twin stores continuously is the **observed latency** (`avgInferenceTime`, "
           "ms) the models predict and the service's **backlog estimate** (`avgBacklogEstimate`, "
           "s), the physical baseline of `ndtpipe train --baseline backlog`: the model learns "
           "`log_latency - ln(1 + 1000 * backlog)`. The residual below is that learning target; "
           "its spread, and the latency spread between pods, bound what any model can reach.",
           h=4)
    d.panel("timeseries", "Observed latency vs backlog-estimate baseline",
            "Mean over the service's pods, milliseconds.",
            [f'SELECT mean({obs}) AS "observed", {base_mean} AS "baseline (backlog estimate)" '
             f'FROM "ServiceComponent" {where} GROUP BY time($__interval)'],
            w=12, h=8, unit="ms")
    d.panel("timeseries", "Baseline error: MAE, P95 and bias",
            "Absolute error of the baseline per pod sample: mean (MAE) and 95th percentile; "
            "bias = mean(observed - baseline).",
            [f'SELECT mean("e") AS "MAE", percentile("e", 95) AS "P95 |error|" FROM '
             f'(SELECT abs({obs} - {base}) AS "e" FROM "ServiceComponent" {where}) '
             f'WHERE $timeFilter GROUP BY time($__interval)',
             f'SELECT mean({obs}) - {base_mean} AS "bias" FROM "ServiceComponent" {where} '
             f'GROUP BY time($__interval)'],
            w=12, h=8, unit="ms")
    d.panel("timeseries", "Residual to learn (log space)",
            "mean of ln(1 + observed) - ln(1 + baseline): the target of a model trained with "
            "--baseline backlog.",
            [f'SELECT mean("r") AS "residual" FROM (SELECT ln({obs} + 1) - ln({base} + 1) AS "r" '
             f'FROM "ServiceComponent" {where}) WHERE $timeFilter GROUP BY time($__interval)'],
            w=12, h=8)
    d.panel("timeseries", "Latency spread between pods",
            "Standard deviation and range of the pods' mean latency in each interval: "
            "variation the pod-averaged features cannot explain.",
            [f'SELECT stddev("l") AS "stddev", spread("l") AS "max - min" FROM '
             f'(SELECT mean({obs}) AS "l" FROM "ServiceComponent" {where} '
             f'GROUP BY time($__interval), "id") WHERE $timeFilter GROUP BY time($__interval)'],
            w=12, h=8, unit="ms")
    d.panel("stat", "Observed latency over the range", "Mean, P95 and max of the pods' latency "
            "samples in the time range: the scale of the models' MAE and P95 error.",
            [f'SELECT mean({obs}) AS "mean", percentile({obs}, 95) AS "P95", max({obs}) AS "max" '
             f'FROM "ServiceComponent" {where}'],
            w=24, h=5, unit="ms",
            options={"reduceOptions": {"calcs": ["lastNotNull"]}, "textMode": "value_and_name"})
    return d


def whatif():
    d = Dashboard("ndt-whatif", "ndtpipe / What-if",
                  "The state a what-if starts from, its control variables, and what past "
                  "changes did: the ground truth of the matched-pairs validation.",
                  ["whatif"])
    service_variable(d)
    scaling_annotations(d)
    d.text("About", "Ask the twin: `curl -s -X POST -d '{\"change\":{\"pods\":\"+1\"}}' "
           "http://127.0.0.1:8080/v1/whatif` answers `baseline_ms`, `predicted_ms`, `delta_ms` "
           "with the model and its deployment grade (docs/API.md). The API reads the state shown "
           "here from the UDR. Annotations mark the changes that happened (orange: pods, "
           "purple: users); the latency around them is what a what-if of the same change "
           "should have predicted.", h=3)
    d.panel("timeseries", "Control variables", "Users, desired and ready pods of the service.",
            [f'SELECT last("currentUsers") AS "users" FROM "Service" WHERE {SERVICE} '
             f'AND $timeFilter GROUP BY time($__interval)',
             f'SELECT last("desiredReplicas") AS "desired pods", last("readyReplicas") AS '
             f'"ready pods" FROM "Service" WHERE {SERVICE} AND $timeFilter '
             f'GROUP BY time($__interval)'],
            w=12, h=8,
            overrides=[{"matcher": {"id": "byName", "options": "users"},
                        "properties": [{"id": "custom.axisPlacement", "value": "right"}]}])
    d.panel("timeseries", "Workload intensity now and after pods +1 / -1",
            "users / pods for the current pods and for one pod more or less: the first input "
            "a pods what-if changes.",
            [f'SELECT mean("currentUsers") / mean("readyReplicas") AS "now", '
             f'mean("currentUsers") / (mean("readyReplicas") + 1) AS "pods +1", '
             f'mean("currentUsers") / (mean("readyReplicas") - 1) AS "pods -1" FROM "Service" '
             f'WHERE {SERVICE} AND "readyReplicas" > 1 AND $timeFilter '
             f'GROUP BY time($__interval)'],
            w=12, h=8)
    d.panel("timeseries", "Observed latency around changes",
            "Mean latency over the service's pods; compare before and after each annotation.",
            [f'SELECT mean("avgInferenceTime") AS "latency" FROM "ServiceComponent" '
             f'WHERE {PODS} AND $timeFilter GROUP BY time($__interval)'],
            w=12, h=8, unit="ms")
    d.panel("timeseries", "Queue and backlog (the state a what-if starts from)",
            "Mean queue depth on enqueue and backlog estimate over the service's pods.",
            [f'SELECT mean("avgDepthOnEnqueue") AS "depth on enqueue", mean("queueDepth") AS '
             f'"queue depth" FROM "ServiceComponent" WHERE {PODS} AND $timeFilter '
             f'GROUP BY time($__interval)',
             f'SELECT mean("avgBacklogEstimate") AS "backlog (s)" FROM "ServiceComponent" '
             f'WHERE {PODS} AND $timeFilter GROUP BY time($__interval)'],
            w=12, h=8,
            overrides=[{"matcher": {"id": "byName", "options": "backlog (s)"},
                        "properties": [{"id": "custom.axisPlacement", "value": "right"},
                                       {"id": "unit", "value": "s"}]}])
    d.panel("timeseries", "Pods ready vs desired", "desired - ready: a scale-out still in "
            "progress (a what-if answers for ready pods).",
            [f'SELECT last("desiredReplicas") - last("readyReplicas") AS "pending pods" '
             f'FROM "Service" WHERE {SERVICE} AND $timeFilter GROUP BY time($__interval)'],
            w=12, h=6)
    d.panel("timeseries", "Requests answered per second", "Sum of the pods' requestRate.",
            [f'SELECT sum("r") AS "requests/s" FROM (SELECT mean("requestRate") AS "r" '
             f'FROM "ServiceComponent" WHERE {PODS} AND $timeFilter '
             f'GROUP BY time($__interval), "id") WHERE $timeFilter GROUP BY time($__interval)'],
            w=12, h=6, unit="reqps")
    return d


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "dashboards")
    os.makedirs(out, exist_ok=True)
    for make in (telemetry, twin, features, model_quality, whatif):
        d = make()
        path = os.path.join(out, d.uid.replace("ndt-", "") + ".json")
        with open(path, "w") as f:
            json.dump(d.json(), f, indent=2, sort_keys=False)
            f.write("\n")
        print(path)


if __name__ == "__main__":
    main()
