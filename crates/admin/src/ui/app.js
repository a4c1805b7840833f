// The Portcullis dashboard: polls the admin server and renders what it answers.
//
// - /ui/api/live every second: request totals, per-second samples (plots), reloads;
// - /status and /endpoints every other second: listeners, routes, backends, endpoints.
//
// Plots are hand-drawn SVG. Every text from the server goes through textContent (never
// innerHTML), so names from the config cannot inject markup. Times are the server's clock
// (`now_unix_ms`), so a skewed browser clock does not shift the plots.
"use strict";

const LIVE_EVERY_MS = 1000;
const STATE_EVERY = 2; // /status and /endpoints on every 2nd live refresh
const SVG = "http://www.w3.org/2000/svg";
const CHART_HEIGHT = 170;
const MARGIN = { left: 44, right: 10, top: 10, bottom: 22 };
const MIN_SPAN_MS = 30000;
const MAX_OBJECTS = 200; // gateways, routes and backends drawn, those with problems first
const MAX_ENDPOINTS = 50; // endpoints drawn per backend, those out of rotation first

const view = {
  minutes: 5,
  live: null,
  refreshes: 0,
  reloadsKey: null,
};

// ---------------------------------------------------------------- small DOM helpers

function $(id) {
  return document.getElementById(id);
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  return node;
}

function badge(text, tone, title) {
  return el("span", { class: "badge " + tone, title: title, text: text });
}

function replaceRows(table, rows, columns, emptyText) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows);
  if (rows.length === 0) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: columns, text: emptyText })));
  }
}

async function fetchJson(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(path + " answered " + response.status);
  return response.json();
}

// ---------------------------------------------------------------- formatting

function formatNumber(value, digits) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return value.toFixed(digits);
}

function formatMs(ms) {
  if (ms === null || ms === undefined) return "–";
  if (ms >= 1000) return (ms / 1000).toFixed(2) + " s";
  if (ms >= 100) return ms.toFixed(0) + " ms";
  if (ms >= 10) return ms.toFixed(1) + " ms";
  return ms.toFixed(2) + " ms";
}

function formatAgo(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return seconds + "s ago";
  if (seconds < 3600) return Math.floor(seconds / 60) + "m " + (seconds % 60) + "s ago";
  return Math.floor(seconds / 3600) + "h " + Math.floor((seconds % 3600) / 60) + "m ago";
}

function clockTime(unixMs) {
  return new Date(unixMs).toLocaleTimeString("en-GB", { hour12: false });
}

// A round upper bound for a y axis (drawn in quarters): 1, 2, 3, 4, 5, 6 or 8 times a power
// of ten.
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 3, 4, 5, 6, 8, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

// ---------------------------------------------------------------- conditions

// Mirrors compile's Condition::is_unhealthy: Conflicted and PartiallyInvalid are negative
// polarity (True is the problem); the others are positive.
function conditionIsBad(condition) {
  const negative = condition.type === "Conflicted" || condition.type === "PartiallyInvalid";
  return (condition.status === "True") === negative;
}

function conditionBadges(conditions) {
  const holder = el("div", { class: "conditions" });
  for (const condition of conditions || []) {
    const bad = conditionIsBad(condition);
    const text = condition.type + (condition.status === "True" ? "" : "=False");
    const title = condition.type + "=" + condition.status + " (" + condition.reason + "): " + condition.message;
    const node = badge(text, bad ? "bad" : "good", title);
    node.dataset.condition = condition.type;
    node.dataset.status = condition.status;
    holder.append(node);
  }
  return holder;
}

// ---------------------------------------------------------------- plots

function windowSamples(live) {
  const since = live.now_unix_ms - view.minutes * 60000;
  return live.samples.filter((sample) => sample.at_unix_ms >= since);
}

// The time the x axis covers: the chosen window, or less (at least MIN_SPAN_MS) while the
// gateway has not sampled that long yet, so that a young gateway's plots are not squeezed
// against the right edge.
function timeSpan(live, samples) {
  const windowMs = view.minutes * 60000;
  if (samples.length === 0) return windowMs;
  const covered = live.now_unix_ms - samples[0].at_unix_ms + live.interval_ms;
  return Math.min(windowMs, Math.max(MIN_SPAN_MS, covered));
}

// A tick step giving at most six ticks over `span`.
function tickStep(span) {
  for (const seconds of [5, 10, 15, 30, 60, 120, 300]) {
    if (span / (seconds * 1000) <= 6) return seconds * 1000;
  }
  return 600000;
}

function offsetLabel(ms) {
  const seconds = Math.round(ms / 1000);
  if (seconds === 0) return "now";
  if (seconds < 60) return "-" + seconds + "s";
  return "-" + Math.floor(seconds / 60) + "m" + (seconds % 60 ? (seconds % 60) + "s" : "");
}

// Draws `series` ({name, values: [number|null], class}) of `samples` into `chart`, with y from
// 0 to a round maximum. A null value breaks its line.
function drawChart(chart, samples, series, live, unit, span) {
  const width = Math.max(260, chart.clientWidth || chart.parentNode.clientWidth || 400);
  const height = CHART_HEIGHT;
  chart.setAttribute("viewBox", "0 0 " + width + " " + height);
  chart.setAttribute("width", width);
  chart.setAttribute("height", height);
  chart.replaceChildren();

  const plotWidth = width - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const end = live.now_unix_ms;
  const start = end - span;
  let max = 0;
  for (const line of series) for (const value of line.values) if (value !== null && value > max) max = value;
  // Headroom above the highest point, but a share never goes past 100%.
  const top = unit === "%" ? Math.min(100, niceCeiling(max * 1.1)) : niceCeiling(max * 1.1);
  const x = (t) => MARGIN.left + ((t - start) / (end - start)) * plotWidth;
  const y = (v) => MARGIN.top + plotHeight - (v / top) * plotHeight;

  // Grid and axes.
  for (let i = 0; i <= 4; i++) {
    const value = (top * i) / 4;
    const at = y(value);
    chart.append(svg("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: at, y2: at }));
    chart.append(svg("text", { class: "axis", x: MARGIN.left - 6, y: at + 4, "text-anchor": "end", text: axisLabel(value, unit) }));
  }
  const step = tickStep(span);
  for (let offset = 0; offset <= span; offset += step) {
    const at = x(end - offset);
    chart.append(svg("line", { class: "tick", x1: at, x2: at, y1: MARGIN.top + plotHeight, y2: MARGIN.top + plotHeight + 4 }));
    chart.append(svg("text", { class: "axis", x: at, y: height - 6, "text-anchor": offset === 0 ? "end" : "middle", text: offsetLabel(offset) }));
  }

  for (const line of series) {
    let path = "";
    let area = "";
    let open = false;
    let first = null;
    let last = null;
    let points = 0;
    samples.forEach((sample, index) => {
      const value = line.values[index];
      if (value === null || value === undefined) {
        if (open && line.area) area += "L" + last.toFixed(1) + "," + y(0).toFixed(1) + "L" + first.toFixed(1) + "," + y(0).toFixed(1) + "Z";
        open = false;
        return;
      }
      const px = x(sample.at_unix_ms).toFixed(1);
      const py = y(value).toFixed(1);
      path += (open ? "L" : "M") + px + "," + py;
      if (line.area) area += (open ? "L" : "M") + px + "," + py;
      if (!open) first = Number(px);
      last = Number(px);
      open = true;
      points++;
    });
    if (open && line.area) area += "L" + last.toFixed(1) + "," + y(0).toFixed(1) + "L" + first.toFixed(1) + "," + y(0).toFixed(1) + "Z";
    if (line.area && area) chart.append(svg("path", { class: "area " + line.class, d: area }));
    chart.append(svg("path", { class: "line " + line.class, d: path, "data-series": line.name, "data-points": points }));
  }
  chart.dataset.points = samples.length;
  chart.dataset.max = top;

  // Hover: the sample under the pointer, with its values.
  chart.onmousemove = (event) => {
    if (samples.length === 0) return;
    const box = chart.getBoundingClientRect();
    const at = start + ((event.clientX - box.left - MARGIN.left) / plotWidth) * (end - start);
    let nearest = 0;
    samples.forEach((sample, index) => {
      if (Math.abs(sample.at_unix_ms - at) < Math.abs(samples[nearest].at_unix_ms - at)) nearest = index;
    });
    const tooltip = $("tooltip");
    const lines = [clockTime(samples[nearest].at_unix_ms)];
    for (const line of series) lines.push(line.name + ": " + axisLabel(line.values[nearest], unit, true));
    tooltip.textContent = lines.join("  ·  ");
    tooltip.hidden = false;
    tooltip.style.left = event.pageX + 12 + "px";
    tooltip.style.top = event.pageY - 28 + "px";
  };
  chart.onmouseleave = () => {
    $("tooltip").hidden = true;
  };
}

// An axis label (`precise`: a tooltip value) in the chart's unit.
function axisLabel(value, unit, precise) {
  if (value === null || value === undefined) return "–";
  if (unit === "ms") return precise ? formatMs(value) : trimmed(value);
  if (unit === "%") return (precise ? value.toFixed(1) : trimmed(value)) + "%";
  return precise ? formatNumber(value, 1) : trimmed(value);
}

// At most three significant digits, no trailing zeros: 12.5, 250, 0.25, 1,500.
function trimmed(value) {
  if (value >= 1000) return Math.round(value).toLocaleString("en-US");
  return String(parseFloat(value.toPrecision(3)));
}

function renderPlots(live) {
  const samples = windowSamples(live);
  const span = timeSpan(live, samples);
  drawChart($("chart-rate"), samples, [
    { name: "req/s", class: "rate", area: true, values: samples.map((s) => s.requests_per_second) },
  ], live, "", span);
  drawChart($("chart-errors"), samples, [
    { name: "5xx", class: "errors", area: true, values: samples.map((s) => (s.requests ? s.error_ratio * 100 : null)) },
  ], live, "%", span);
  drawChart($("chart-latency"), samples, [
    { name: "p50", class: "p50", values: samples.map((s) => s.p50_ms) },
    { name: "p90", class: "p90", values: samples.map((s) => s.p90_ms) },
    { name: "p99", class: "p99", values: samples.map((s) => s.p99_ms) },
  ], live, "ms", span);

  // "Now" figures: the last 10 seconds, so one quiet second does not read as an outage.
  const recent = live.samples.slice(-10);
  const requests = recent.reduce((sum, s) => sum + s.requests, 0);
  const errors = recent.reduce((sum, s) => sum + s.errors, 0);
  const seconds = recent.length || 1;
  $("now-rate").textContent = formatNumber(requests / seconds, 1) + " req/s";
  $("now-errors").textContent = requests ? ((errors / requests) * 100).toFixed(1) + "% 5xx" : "no traffic";
  const lastWithLatency = [...recent].reverse().find((s) => s.p99_ms !== null);
  $("now-latency").textContent = lastWithLatency
    ? "p99 " + formatMs(lastWithLatency.p99_ms)
    : "no traffic";
}

// ---------------------------------------------------------------- header and reloads

function renderHeader(live) {
  const totals = live.totals;
  $("total-requests").textContent = totals.requests.toLocaleString("en-US");
  $("total-requests").dataset.value = totals.requests;
  $("total-errors").textContent = totals.errors.toLocaleString("en-US");
  $("total-errors").dataset.value = totals.errors;
  $("ready").replaceChildren(live.ready ? badge("ready", "good") : badge("not ready", "bad"));

  const last = live.reloads[live.reloads.length - 1];
  if (last) {
    const holder = $("last-reload");
    holder.replaceChildren(
      outcomeBadge(last),
      el("span", { class: "ago", text: " " + formatAgo(live.now_unix_ms - last.at_unix_ms) }),
    );
    holder.dataset.outcome = last.outcome;
  }
  $("updated").textContent = "updated " + clockTime(live.now_unix_ms);
  $("updated").classList.remove("stale");
}

function outcomeBadge(reload) {
  const tones = { ok: "good", problems: "warn", rejected: "bad" };
  const texts = { ok: "ok", problems: reload.problem_count + " problem" + (reload.problem_count === 1 ? "" : "s"), rejected: "file rejected" };
  const detail = reload.file_errors.concat(reload.problems).join("\n");
  return badge(texts[reload.outcome] || reload.outcome, tones[reload.outcome] || "neutral", detail || undefined);
}

function renderReloads(live) {
  // Redrawn only when a reload was added: a redraw would close the details someone opened.
  const last = live.reloads[live.reloads.length - 1];
  const key = live.reloads.length + ":" + (last ? last.generation + "@" + last.at_unix_ms : "");
  if (key === view.reloadsKey) return;
  view.reloadsKey = key;
  const rows = [...live.reloads].reverse().map((reload) => {
    const errors = reload.file_errors.concat(reload.problems);
    let detail = null;
    if (errors.length > 0) {
      const more = reload.problem_count - reload.problems.length;
      detail = el("details", {},
        el("summary", { text: errors[0].length > 70 ? errors[0].slice(0, 70) + "…" : errors[0] }),
        el("ul", {}, ...errors.map((line) => el("li", { text: line })),
          more > 0 ? el("li", { class: "muted", text: "… and " + more + " more in /status" }) : null));
    }
    return el("tr", { "data-generation": reload.generation },
      el("td", { class: "num", text: String(reload.generation) }),
      el("td", { title: new Date(reload.at_unix_ms).toISOString(), text: clockTime(reload.at_unix_ms) }),
      el("td", {}, outcomeBadge(reload)),
      el("td", { text: reload.compiled ? "config" : "endpoints" }),
      el("td", { class: "num", text: formatMs(reload.elapsed_ms) }),
      el("td", { class: "errors" }, detail || el("span", { class: "muted", text: "none" })));
  });
  replaceRows($("reloads"), rows, 6, "no reload yet");
}

// ---------------------------------------------------------------- status: listeners, routes

function objectLabel(object) {
  return object.kind + " " + (object.namespace ? object.namespace + "/" : "") + object.name;
}

// Whether an object of /status has a problem: a field-level one or an unhealthy condition.
function objectIsBad(object) {
  if (object.problems && object.problems.length) return true;
  const groups = [object.conditions || []];
  for (const listener of object.listeners || []) groups.push(listener.conditions || []);
  for (const parent of object.parents || []) groups.push(parent.conditions || []);
  return groups.some((conditions) => conditions.some(conditionIsBad));
}

// The first MAX_OBJECTS of `objects`, those with problems first (each group in /status
// order): with thousands of routes, the table shows what needs attention and says how many
// more there are.
function firstObjects(objects) {
  const bad = objects.filter(objectIsBad);
  const good = objects.filter((object) => !objectIsBad(object));
  const shown = bad.concat(good).slice(0, MAX_OBJECTS);
  return { shown: shown, more: objects.length - shown.length };
}

function moreRow(more, columns, what) {
  return el("tr", { class: "more" },
    el("td", { colspan: columns, class: "muted", text: "… and " + more.toLocaleString("en-US") + " more " + what + " (all in /status)" }));
}

function renderStatus(status) {
  $("generation").textContent = status.generation === undefined ? "–" : String(status.generation);
  const objects = status.objects || [];

  const gateways = firstObjects(objects.filter((object) => object.listeners));
  const listenerRows = [];
  for (const object of gateways.shown) {
    object.listeners.forEach((listener, index) => {
      listenerRows.push(el("tr", { "data-listener": objectLabel(object) + " listener " + listener.name },
        el("td", {}, index === 0 ? el("span", { class: "name", text: objectLabel(object) }) : null,
          index === 0 && object.conditions ? conditionBadges(object.conditions) : null),
        el("td", { class: "name", text: listener.name }),
        el("td", { class: "num", text: String(listener.attachedRoutes) }),
        el("td", {}, conditionBadges(listener.conditions))));
    });
  }
  if (gateways.more > 0) listenerRows.push(moreRow(gateways.more, 4, "gateways"));
  replaceRows($("listeners"), listenerRows, 4, "no listener");

  const routes = firstObjects(objects.filter((object) => object.kind.endsWith("Route")));
  const routeRows = [];
  for (const object of routes.shown) {
    const parents = object.parents && object.parents.length ? object.parents : [null];
    parents.forEach((parent, index) => {
      let parentText = "not attached";
      if (parent) {
        const ref = parent.parentRef;
        parentText = ref.kind + " " + ref.namespace + "/" + ref.name + (ref.sectionName ? " · " + ref.sectionName : "") + (ref.port ? " :" + ref.port : "");
      }
      const problems = index === 0 && object.problems
        ? el("ul", { class: "problems-inline" }, ...object.problems.map((line) => el("li", { text: line })))
        : null;
      routeRows.push(el("tr", { "data-route": objectLabel(object) },
        el("td", {}, index === 0 ? el("span", { class: "name", text: objectLabel(object) }) : null, problems),
        el("td", { class: "parent", text: parentText }),
        el("td", {}, conditionBadges(parent ? parent.conditions : []))));
    });
  }
  if (routes.more > 0) routeRows.push(moreRow(routes.more, 3, "routes"));
  replaceRows($("routes"), routeRows, 3, "no route");

  const problems = status.problems || [];
  $("problems-card").hidden = problems.length === 0;
  $("problem-count").textContent = problems.length ? "(" + problems.length + ")" : "";
  $("problems").replaceChildren(...problems.slice(0, 50).map((line) => el("li", { text: line })));
}

// ---------------------------------------------------------------- backends and endpoints

function healthBadge(health) {
  if (health.ejected_for_ms !== undefined) {
    return badge("ejected " + Math.ceil(health.ejected_for_ms / 1000) + "s", "bad",
      "outlier detection ejected it; back in " + formatMs(health.ejected_for_ms));
  }
  if (!health.healthy) {
    return badge("unhealthy", "bad", health.probe_failures + " consecutive failed probes");
  }
  const suspect = health.consecutive_5xx > 0 || health.consecutive_gateway_errors > 0;
  return badge("healthy", suspect ? "warn" : "good",
    health.consecutive_5xx + " consecutive 5xx, " + health.consecutive_gateway_errors + " consecutive gateway errors");
}

function breakerBadge(breaker) {
  const tones = { closed: "good", open: "bad", "half-open": "warn" };
  return badge("breaker " + breaker.state, tones[breaker.state] || "neutral",
    breaker.parallel + " in flight, " + breaker.pending + " pending");
}

function isAvailable(endpoint) {
  return endpoint.health.healthy && endpoint.health.ejected_for_ms === undefined;
}

// Whether a backend needs attention: an endpoint out of rotation, none at all, or a breaker
// that is not closed.
function backendIsBad(backend) {
  const endpoints = backend.endpoints || [];
  return endpoints.length === 0 || !endpoints.every(isAvailable)
    || (backend.breaker && backend.breaker.state !== "closed");
}

function renderEndpoints(backends) {
  const rows = [];
  const all = Object.entries(backends);
  // Backends needing attention first, each group in name order; at most MAX_OBJECTS.
  const ordered = all.filter(([, b]) => backendIsBad(b)).concat(all.filter(([, b]) => !backendIsBad(b)));
  for (const [name, backend] of ordered.slice(0, MAX_OBJECTS)) {
    const endpoints = backend.endpoints || [];
    const healthy = endpoints.filter(isAvailable).length;
    const tone = endpoints.length === 0 || healthy === 0 ? "bad" : healthy < endpoints.length ? "warn" : "good";
    const header = el("tr", { class: "backend", "data-backend": name },
      el("td", { colspan: 7 },
        el("span", { class: "name", text: name }),
        el("span", { class: "protocol", text: backend.protocol + (backend.tls ? " · TLS" : "") }),
        badge(healthy + "/" + endpoints.length + " available", tone),
        backend.breaker ? breakerBadge(backend.breaker) : null));
    header.dataset.breaker = backend.breaker ? backend.breaker.state : "";
    rows.push(header);
    // Endpoints out of rotation first, then the rest, at most MAX_ENDPOINTS per backend.
    const listed = endpoints.filter((e) => !isAvailable(e)).concat(endpoints.filter(isAvailable));
    for (const endpoint of listed.slice(0, MAX_ENDPOINTS)) {
      const row = el("tr", { class: "endpoint", "data-endpoint": endpoint.address, "data-backend": name },
        el("td", { class: "address", text: endpoint.address + (endpoint.weight !== 1 ? " ×" + endpoint.weight : "") }),
        el("td", {}, healthBadge(endpoint.health)),
        el("td", { class: "num", text: formatMs(endpoint.latency_ms) }),
        el("td", { class: "num", text: String(endpoint.in_flight) }),
        el("td", { class: "num", text: endpoint.requests.toLocaleString("en-US") }),
        el("td", { class: "num" + (endpoint.failures > 0 ? " warn-text" : ""), text: endpoint.failures.toLocaleString("en-US") }),
        el("td", { class: "num", text: String(endpoint.health.ejections) }));
      row.dataset.health = endpoint.health.ejected_for_ms !== undefined ? "ejected" : endpoint.health.healthy ? "healthy" : "unhealthy";
      rows.push(row);
    }
    if (listed.length > MAX_ENDPOINTS) {
      rows.push(el("tr", { class: "endpoint more" },
        el("td", { colspan: 7, class: "muted", text: "… and " + (listed.length - MAX_ENDPOINTS) + " more endpoints (all in /endpoints)" })));
    }
    if (endpoints.length === 0) {
      rows.push(el("tr", { class: "endpoint" }, el("td", { colspan: 7, class: "muted", text: "no endpoint" })));
    }
  }
  if (ordered.length > MAX_OBJECTS) {
    rows.push(el("tr", { class: "more" },
      el("td", { colspan: 7, class: "muted", text: "… and " + (ordered.length - MAX_OBJECTS) + " more backends (all in /endpoints)" })));
  }
  replaceRows($("backends"), rows, 7, "no backend");
}

// ---------------------------------------------------------------- polling

function markStale(error) {
  const updated = $("updated");
  updated.textContent = "cannot reach the gateway: " + error.message;
  updated.classList.add("stale");
}

async function refresh() {
  try {
    const live = await fetchJson("/ui/api/live");
    view.live = live;
    renderHeader(live);
    renderPlots(live);
    renderReloads(live);
    if (view.refreshes % STATE_EVERY === 0) {
      const [status, endpoints] = await Promise.all([fetchJson("/status"), fetchJson("/endpoints")]);
      renderStatus(status);
      renderEndpoints(endpoints);
    }
    view.refreshes++;
    document.body.dataset.refreshes = view.refreshes;
  } catch (error) {
    markStale(error);
  } finally {
    setTimeout(refresh, LIVE_EVERY_MS);
  }
}

function start() {
  for (const button of document.querySelectorAll("#window button")) {
    button.addEventListener("click", () => {
      view.minutes = Number(button.dataset.minutes);
      for (const other of document.querySelectorAll("#window button")) other.classList.toggle("active", other === button);
      if (view.live) renderPlots(view.live);
    });
  }
  window.addEventListener("resize", () => {
    if (view.live) renderPlots(view.live);
  });
  refresh();
}

start();
