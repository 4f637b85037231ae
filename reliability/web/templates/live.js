// Live SLA page of locust-reliability: polls state.json every 2 s, draws SVG charts, drives the
// fault buttons. Every value from the server is written with textContent (never as HTML).
"use strict";
(function () {
  const PAGE = document.body.dataset.page;
  const POLL_MS = 2000;
  const SHOW_S = 600;  // the charts show the last ten minutes
  const SVG = "http://www.w3.org/2000/svg";
  let rows = [];
  let lastT = null;
  let startedAt = null;
  let latest = null;

  const $ = (id) => document.getElementById(id);

  function text(el, value) { el.textContent = value === null || value === undefined ? "" : String(value); }

  function pct(v, digits) { return v === null || v === undefined ? "no data" : (v * 100).toFixed(digits) + " %"; }

  function fmtValue(v, unit) {
    if (v === null || v === undefined) return "no data";
    return unit === "ms" ? v.toFixed(1) + " ms" : (v * 100).toPrecision(3) + " %";
  }

  function fmtS(v) {
    if (v === null || v === undefined) return "";
    v = Math.max(0, v);
    const join = (big, bigUnit, small, smallUnit) => big + " " + bigUnit + (small ? " " + small + " " + smallUnit : "");
    if (v >= 3600) return join(Math.floor(v / 3600), "h", Math.floor((v % 3600) / 60), "min");
    if (v >= 60) return join(Math.floor(v / 60), "min", Math.floor(v % 60), "s");
    return v.toFixed(0) + " s";
  }

  function fillTable(id, data, cells) {
    const body = $(id).tBodies[0];
    body.replaceChildren();
    for (const item of data) {
      const tr = document.createElement("tr");
      for (const cell of cells(item, tr)) {
        const td = document.createElement("td");
        const [value, cls] = Array.isArray(cell) ? cell : [cell, null];
        text(td, value);
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  // -- charts ------------------------------------------------------------------------------------
  function el(name, attrs) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    return node;
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function draw(name, series, threshold, bands, cap) {
    const svg = document.querySelector(`figure[data-chart="${name}"] svg`);
    const W = 600, H = 180, L = 44, R = 6, T = 6, B = 18;
    svg.replaceChildren();
    const now = latest ? latest.run.data_until : Math.floor(Date.now() / 1000);
    const first = startedAt === null ? now - SHOW_S : Math.floor(startedAt);
    const span = Math.min(SHOW_S, Math.max(60, now - first));  // the run so far, 1 to 10 minutes
    const x0 = now - span, x1 = now;
    let ymax = threshold || 0;
    for (const s of series) for (const [x, y] of s.points) if (x >= x0 && y !== null && y > ymax) ymax = y;
    ymax = Math.min(niceMax(ymax * 1.05), cap || Infinity);
    const sx = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
    const sy = (y) => T + (1 - y / ymax) * (H - T - B);
    for (const [a, b] of bands) {
      const left = sx(Math.max(a, x0)), right = sx(Math.min(b, x1));
      if (right > left) svg.appendChild(el("rect", { class: "band fault", x: left, y: T, width: right - left, height: H - T - B }));
    }
    svg.appendChild(el("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }));
    svg.appendChild(el("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }));
    for (const frac of [0, 0.5, 1]) {
      const label = el("text", { class: "tick", x: L - 4, y: sy(ymax * frac) + 3, "text-anchor": "end" });
      label.textContent = +(ymax * frac).toPrecision(3);
      svg.appendChild(label);
    }
    for (const back of [span, span / 2, 0]) {
      const label = el("text", { class: "tick", x: sx(now - back), y: H - 4, "text-anchor": back === span ? "start" : back === 0 ? "end" : "middle" });
      label.textContent = back === 0 ? "now" : "-" + fmtS(back);
      svg.appendChild(label);
    }
    if (threshold) svg.appendChild(el("line", { class: "threshold", x1: L, x2: W - R, y1: sy(threshold), y2: sy(threshold) }));
    for (const s of series) {
      let d = "";
      let pen = false;
      for (const [x, y] of s.points) {
        if (x < x0 || y === null) { pen = false; continue; }
        d += (pen ? "L" : "M") + sx(x).toFixed(1) + " " + sy(y).toFixed(1);
        pen = true;
      }
      if (d) svg.appendChild(el("path", { class: "series " + (s.cls || ""), d: d, "data-points": s.points.length }));
    }
  }

  function faultBands(state) {
    const start = state.run.started_at;
    const out = [];
    if (start === null) return out;
    for (const f of state.faults.items) {
      if (f.injected_at_s === null) continue;
      const end = f.reverted_at_s !== null ? start + f.reverted_at_s : state.now;
      out.push([start + f.injected_at_s, end]);
    }
    return out;
  }

  function drawCharts(state) {
    const bands = faultBands(state);
    const label = state.sla.percentile;
    text($("latency-caption"), `${label} per second (ms), threshold ${state.series.latency_threshold_ms ?? "none"}`);
    draw("latency", [{ points: rows.map((r) => [r[0], r[4]]) }], state.series.latency_threshold_ms, bands);
    draw("errors", [{ points: rows.map((r) => [r[0], r[1] ? (100 * r[2]) / r[1] : null]) }],
      state.series.error_threshold === null ? null : state.series.error_threshold * 100, bands, 100);
    draw("rps", [{ points: rows.map((r) => [r[0], r[1]]) }, { points: rows.map((r) => [r[0], r[3]]), cls: "second" }], null, bands);
  }

  // -- state -------------------------------------------------------------------------------------
  function render(state) {
    latest = state;
    text($("runner-state"), state.runner_state || "no runner");
    text($("scenario"), state.run.scenario || "");
    const sla = state.sla;
    const badge = $("verdict-badge");
    badge.className = "badge" + (sla.outcome ? " " + sla.outcome : "");
    text(badge, sla.outcome ? sla.outcome.toUpperCase() : "no data");
    text($("verdict-text"), sla.evaluated
      ? `${sla.tier} (${sla.percentile}) over the last ${sla.window_s} s: ${sla.requests} requests, ${sla.failures} failed`
        + (sla.next_tier && sla.blocked_by.length ? `; ${sla.next_tier} blocked by ${sla.blocked_by.join("; ")}` : "")
      : `${sla.tier} (${sla.percentile}): waiting for the first rolling window`);
    text($("card-tier"), sla.highest_tier_met || "none");
    const budget = state.budget;
    const spent = budget.remaining !== null && budget.remaining < 0;
    text($("card-budget"), spent ? "spent" : pct(budget.remaining, 1));
    $("card-budget").className = budget.remaining === null ? "" : spent ? "bad" : "good";
    text($("card-slo"), budget.slo === null ? "" : `SLO ${(budget.slo * 100).toPrecision(4)} %, whole run`
      + (spent ? `; ${(1 - budget.remaining).toFixed(1)}x the budget used` : ""));
    text($("card-burn"), budget.burn_rate === null ? "no data" : budget.burn_rate.toFixed(2) + "x");
    text($("card-burn-window"), `last ${budget.window_s} s; 1x spends the budget exactly`);
    const upSpent = budget.uptime_remaining !== null && budget.uptime_remaining < 0;
    text($("card-uptime-budget"), upSpent ? "spent" : pct(budget.uptime_remaining, 1));
    $("card-uptime-budget").className = budget.uptime_remaining === null ? "" : upSpent ? "bad" : "good";
    text($("card-uptime-detail"), budget.uptime_slo === null ? ""
      : `SLO ${(budget.uptime_slo * 100).toPrecision(4)} % of seconds; ${budget.run_down_seconds} of ${budget.run_seconds} `
        + `stalled or slow; burn ${budget.uptime_burn_rate === null ? "n/a" : budget.uptime_burn_rate.toFixed(2) + "x"} `
        + `over the last ${budget.window_s} s`);
    const alerts = state.alerts;
    text($("card-alert"), !alerts.configured ? "not configured" : alerts.severity ? alerts.severity.toUpperCase() : "none");
    $("card-alert").className = alerts.severity || "";
    text($("card-alert-detail"), alerts.configured ? `${alerts.webhooks} webhook(s)` : "add alerts: to the scenario");
    const health = state.health;
    text($("card-health"), !health.configured ? "not configured" : health.status || "not probed yet");
    $("card-health").className = health.status === "healthy" ? "good" : health.status === "down" ? "bad" : health.status === "degraded" ? "warning" : "";
    text($("card-health-detail"), health.root_causes.length ? "root cause: " + health.root_causes.join(", ") : health.score === null ? "" : `score ${health.score}`);

    fillTable("criteria-table", sla.criteria, (c) => [
      c.name, fmtValue(c.actual, c.unit), `${c.comparator} ${fmtValue(c.threshold, c.unit)}`,
      c.actual === null ? "no data" : [c.outcome.toUpperCase(), "status-" + c.outcome.toUpperCase()]]);

    const faults = state.faults;
    fillTable("fault-table", faults.items, (f, tr) => {
      if (f.active) tr.className = "active";
      const when = f.active ? fmtS(f.time_left_s) + " left" : f.state === "pending" && f.starts_in_s !== null ? "starts in " + fmtS(f.starts_in_s) : "";
      return [f.name, f.type, f.state, `at +${fmtS(f.at_s)} for ${fmtS(f.hold_s)}`, when, f.error || ""];
    });
    const select = $("fault-select");
    const names = faults.items.map((f) => f.name);
    if (select.dataset.names !== names.join("\n")) {
      const keep = select.value;
      select.replaceChildren(...names.map((n) => { const o = document.createElement("option"); o.value = n; o.textContent = n; return o; }));
      if (names.includes(keep)) select.value = keep;
      select.dataset.names = names.join("\n");
    }
    select.disabled = !names.length;
    $("inject").disabled = !(faults.can_inject && names.length);
    $("revert").disabled = !(faults.can_revert && names.length);

    fillTable("health-table", health.components, (c) => [
      c.name + (c.critical ? "" : " (non-critical)"), [c.status || "not probed yet", "status-" + c.status],
      c.latency_ms === null ? "" : c.latency_ms.toFixed(1) + " ms", c.role || "", c.detail || ""]);

    const x = (v) => (v === null ? "n/a" : v.toFixed(1) + "x");
    fillTable("burn-table", alerts.burn_rates, (b) => [
      `${b.rule} (${b.severity})`, `${x(b.long)} over ${b.long_s} s`, `${x(b.short)} over ${b.short_s} s`,
      `>= ${b.threshold}x`, b.firing ? ["FIRING", "status-FIRING"] : ""]);
    fillTable("alert-table", alerts.events.slice().reverse(), (e) => [
      `+${fmtS(e.t_s)}`, e.kind, [e.severity, "status-" + e.severity], e.reasons.join("; "),
      e.deliveries.map((d) => `${d.webhook}: ${d.error || d.status}`).join("; ")]);

    text($("endpoint-latency-head"), sla.percentile);
    fillTable("endpoint-table", state.endpoints, (e) => [
      e.type, e.name, e.requests, e.rps.toFixed(1), pct(e.error_ratio, 2),
      e.latency_ms === null ? "no data" : e.latency_ms.toFixed(1) + " ms", e.burn_rate === null ? "" : e.burn_rate.toFixed(2) + "x"]);

    drawCharts(state);
  }

  async function poll() {
    try {
      const query = lastT === null ? "" : "?since=" + (lastT + 1);
      const response = await fetch(PAGE + "state.json" + query, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const state = await response.json();
      if (state.run.started_at !== startedAt) { rows = []; lastT = null; startedAt = state.run.started_at; }
      for (const row of state.series.rows) if (lastT === null || row[0] > lastT) rows.push(row);
      if (rows.length) lastT = rows[rows.length - 1][0];
      const cutoff = state.run.data_until - 900;
      while (rows.length && rows[0][0] < cutoff) rows.shift();
      render(state);
    } catch (err) {
      text($("runner-state"), "disconnected: " + err.message);
    }
  }

  async function control(path, body) {
    const message = $("control-message");
    text(message, "sending...");
    try {
      const response = await fetch(PAGE + path, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Reliability": "1" },
        body: JSON.stringify(body || {}),
      });
      const answer = await response.json();
      text(message, answer.ok ? `accepted: ${answer.accepted}` : `refused: ${answer.error}`);
    } catch (err) {
      text(message, "failed: " + err.message);
    }
    poll();
  }

  $("inject").addEventListener("click", () => control("faults/inject", { name: $("fault-select").value }));
  $("revert").addEventListener("click", () => control("faults/revert"));
  poll();
  setInterval(poll, POLL_MS);
})();
