/* p2pgrid dashboard: draws the REST API's data with plotly.js and applies the
   Server-Sent Events pushed each interval (Plotly.extendTraces for appended intervals,
   Plotly.react for snapshots, Plotly.restyle for the feeder map, drawn once).
   Nothing is loaded from outside this server. */
"use strict";

const P = (window.__p2p = {
  meta: null, status: null, rows: [], byT: new Map(), latestT: -1, selectedT: null,
  updates: 0, lastSeq: 0, latencies: [], receipts: [], drawn: [], hh: [], hhSort: { col: "agent_id", dir: "asc" },
  hhT: null, errors: [], map: { drawn: false, loading: false, pending: null, restyles: 0 },
});

const CONFIG = { displaylogo: false, responsive: true };
const LAYOUT = { template: "plotly_white", margin: { l: 60, r: 50, t: 44, b: 40 },
  legend: { orientation: "h", y: -0.18 }, font: { size: 11 } };
const KPIS = [
  ["self_sufficiency", "Self-sufficiency", "pct"],
  ["self_consumption", "Self-consumption", "pct"],
  ["p2p_share", "P2P share of purchases", "pct"],
  ["p2p_kwh", "P2P energy [kWh]", "num"],
  ["community_savings", "Community savings", "money"],
  ["savings_frac", "Savings vs no-P2P", "pct"],
  ["mean_price_per_kwh", "Mean P2P price [/kWh]", "price"],
  ["violation_hours", "Violation hours", "num"],
  ["curtailed_kwh", "Curtailed [kWh]", "num"],
  ["peak_import_kw", "Peak import [kW]", "num"],
  ["intervals", "Intervals", "int"],
];
// household columns: id, bus and devices (sizes), the interval's position, the bill so
// far; the heat-pump column only when some household has one
const HH_COLS = [
  ["agent_id", "household"], ["bus", "bus"], ["pv_kwp", "PV [kWp]"],
  ["battery_kwh_capacity", "battery [kWh]"], ["ev_kwh_capacity", "EV [kWh]"],
  ["ev_v2g", "V2G"], ["heat_pump_kw", "heat pump [kW]"],
  ["net_kwh", "net [kWh]"], ["bought_p2p_kwh", "bought P2P"], ["sold_p2p_kwh", "sold P2P"],
  ["grid_import_kwh", "import"], ["grid_export_kwh", "export"], ["soc_kwh", "battery SoC"],
  ["ev_soc_kwh", "EV SoC"], ["bill", "bill so far"], ["savings", "savings"],
];
function hhCols() {
  return HH_COLS.filter(([c]) => c !== "heat_pump_kw" || P.hh.some((r) => r[c] > 0));
}
const HH_SHOWN = 200;

// ------------------------------------------------------------------ helpers
const $ = (id) => document.getElementById(id);
const token = new URLSearchParams(location.search).get("token");
function api(path) {
  return fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(async (r) => {
      if (!r.ok) {
        let msg = r.statusText;
        try { msg = (await r.json()).detail; } catch (e) { /* not JSON */ }
        const err = new Error(msg); err.status = r.status; throw err;
      }
      return r.json();
    });
}
function fmt(v, kind, currency) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  if (kind === "pct") return (100 * v).toFixed(1) + " %";
  if (kind === "money") return v.toLocaleString("en", { maximumFractionDigits: 2,
    minimumFractionDigits: 2 }) + " " + currency;
  if (kind === "price") return v.toFixed(4) + " " + currency;
  if (kind === "int") return String(Math.round(v));
  return v.toLocaleString("en", { maximumFractionDigits: 1, minimumFractionDigits: 1 });
}
function xOf(row) {
  return row.timestamp ? row.timestamp.slice(0, 19).replace("T", " ") : row.t;
}
function num(v) { return v === null || v === undefined ? null : v; }
function kw(v) { return v === null || v === undefined ? null : v / hours(); }
function neg(v) { return v === null || v === undefined ? null : -v / hours(); }
function hours() { return (P.meta.interval_minutes || 15) / 60; }
function hline(y, label, dash, yref) {
  if (y === null || y === undefined) return [];
  return [{ type: "line", xref: "paper", x0: 0, x1: 1, yref: yref || "y", y0: y, y1: y,
    line: { color: "grey", dash, width: 1 }, label: { text: label, textposition: "end",
      font: { size: 10, color: "grey" } } }];
}
function setStatus(st) {
  if (!st) return;
  P.status = st;
  const el = $("status");
  el.dataset.state = st.state;
  el.textContent = st.message || st.state;
  const banner = $("banner");
  if (st.state === "disconnected" || st.state === "error") {
    banner.hidden = false; banner.dataset.reason = "source"; banner.textContent = st.message;
  } else if (banner.dataset.reason === "source") {
    banner.hidden = true; banner.dataset.reason = "";
  }
}

// ------------------------------------------------------------------ time series charts
// Each series chart: a list of [column, transform] per trace, drawn against xOf(row).
const SERIES = {
  "chart-price": [["clearing_price_per_kwh", num], ["p2p_kwh", num]],
  "chart-flows": [["generation_kwh", kw], ["demand_kwh", neg], ["battery_kwh", neg],
    ["ev_kwh", neg], ["grid_import_kwh", kw], ["grid_export_kwh", neg], ["p2p_kwh", kw]],
  "chart-soc": [["battery_soc_kwh", num], ["ev_soc_kwh", num]],
  "chart-grid-time": [["v_min_pu", num], ["v_max_pu", num], ["curtailed_kwh", num]],
};
function seriesData(id, rows) {
  const xs = rows.map(xOf);
  return SERIES[id].map(([col, f]) => ({ x: xs.slice(), y: rows.map((r) => f(r[col])) }));
}
function drawSeries(rows) {
  const m = P.meta, cur = m.currency || "";
  const d = (id) => seriesData(id, rows);
  const price = d("chart-price");
  Plotly.react("chart-price", [
    { ...price[0], name: "clearing price", mode: "lines", line: { color: "#d62728" },
      connectgaps: false },
    { ...price[1], name: "P2P volume [kWh]", type: "bar", yaxis: "y2",
      marker: { color: "#9ecae1" }, opacity: 0.7 },
  ], { ...LAYOUT, title: { text: "Clearing price and P2P volume" },
    yaxis: { title: { text: `price [${cur}/kWh]` } },
    yaxis2: { title: { text: "P2P [kWh]" }, overlaying: "y", side: "right", showgrid: false },
    shapes: [...hline(m.retail_price_per_kwh, "retail", "dash"),
      ...hline(m.feed_in_price_per_kwh, "feed-in", "dot")] }, CONFIG);
  const names = ["PV generation", "demand", "battery charging", "EV charging", "grid import",
    "grid export", "traded P2P"];
  const colors = ["#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd", "#7f7f7f", "#bcbd22", "#d62728"];
  Plotly.react("chart-flows", d("chart-flows").map((s, i) => ({ ...s, name: names[i],
    mode: "lines", line: { color: colors[i], width: 1.2 } })),
  { ...LAYOUT, title: { text: "Community energy flows (sources +, uses −)" },
    yaxis: { title: { text: "power [kW]" } } }, CONFIG);
  // home batteries (left) and EVs (right) each on their own axis: a car fleet ten times
  // the batteries' size must not flatten their curve
  Plotly.react("chart-soc", d("chart-soc").map((s, i) => ({ ...s,
    name: ["home batteries (left)", "EVs (right)"][i], mode: "lines",
    line: { color: ["#2ca02c", "#9467bd"][i] }, yaxis: ["y", "y2"][i] })),
  { ...LAYOUT, title: { text: "Stored energy, sum over households" },
    yaxis: { title: { text: "home batteries [kWh]" }, rangemode: "tozero" },
    yaxis2: { title: { text: "EVs [kWh]" }, overlaying: "y", side: "right",
      showgrid: false, rangemode: "tozero" } }, CONFIG);
  const g = d("chart-grid-time");
  Plotly.react("chart-grid-time", [
    { ...g[0], name: "lowest bus voltage", mode: "lines" },
    { ...g[1], name: "highest bus voltage", mode: "lines" },
    { ...g[2], name: "curtailed PV [kWh]", type: "bar", yaxis: "y2",
      marker: { color: "#ff7f0e" } },
  ], { ...LAYOUT, title: { text: "Voltage band and curtailment" },
    yaxis: { title: { text: "voltage [p.u.]" } },
    yaxis2: { title: { text: "curtailed [kWh]" }, overlaying: "y", side: "right",
      showgrid: false, rangemode: "tozero" },
    shapes: [...hline(m.v_min_pu, "v min", "dash"), ...hline(m.v_max_pu, "v max", "dash")] },
  CONFIG);
}
function extendSeries(rows) {
  for (const id of Object.keys(SERIES)) {
    const data = seriesData(id, rows);
    Plotly.extendTraces(id, { x: data.map((s) => s.x), y: data.map((s) => s.y) },
      data.map((_, i) => i));
  }
}

// ------------------------------------------------------------------ snapshots
function drawBook(book) {
  const el = $("chart-book");
  const cur = P.meta.currency || "";
  if (!book) return;
  const when = book.timestamp ? xOf(book) : "";
  const traces = [
    { x: book.demand.energy_kwh, y: book.demand.price_per_kwh, name: "demand (bids)",
      mode: "lines", line: { color: "#1f77b4" } },
    { x: book.supply.energy_kwh, y: book.supply.price_per_kwh, name: "supply (asks)",
      mode: "lines", line: { color: "#ff7f0e" } },
  ];
  if (book.price_per_kwh !== null && book.price_per_kwh !== undefined) {
    traces.push({ x: [book.volume_kwh], y: [book.price_per_kwh], name: "clearing point",
      mode: "markers", marker: { size: 11, color: "#d62728" } });
  }
  Plotly.react(el, traces, { ...LAYOUT,
    title: { text: `Supply and demand — interval ${book.t} ${when}` +
      `<br><sub>${book.source || ""}</sub>` },
    xaxis: { title: { text: "energy [kWh]" } },
    yaxis: { title: { text: `price [${cur}/kWh]` } } }, CONFIG);
  el.dataset.t = String(book.t);
}
function drawFeeder(f) {
  const m = P.meta;
  drawMap(f);
  for (const id of ["chart-voltage", "chart-loading", "chart-nodal"]) $(id).dataset.t = "";
  if (!f) {
    const note = m.has_feeder === false || P.status?.state === "connected" ||
      P.status?.state === "disconnected"
      ? "no per-bus feeder state in this source" : "no feeder state";
    for (const [id, title] of [["chart-voltage", "Voltage along the feeder"],
      ["chart-loading", "Line loadings"], ["chart-nodal", "Nodal prices"]]) {
      Plotly.react(id, [], { ...LAYOUT, title: { text: `${title} (${note})` } }, CONFIG);
    }
    return;
  }
  const when = f.timestamp ? xOf(f) : "";
  const depth = new Map(f.buses.map((b) => [b.bus, b]));
  const sx = [], sy = [];
  for (const l of f.lines) {
    const a = depth.get(l.from_bus), b = depth.get(l.to_bus);
    if (a && b) { sx.push(a.depth, b.depth, null); sy.push(a.v_pu, b.v_pu, null); }
  }
  const vmin = f.v_min_limit_pu ?? m.v_min_pu, vmax = f.v_max_limit_pu ?? m.v_max_pu;
  Plotly.react("chart-voltage", [
    { x: sx, y: sy, mode: "lines", line: { color: "#bbb", width: 1 }, hoverinfo: "skip",
      showlegend: false },
    { x: f.buses.map((b) => b.depth), y: f.buses.map((b) => b.v_pu),
      text: f.buses.map((b) => b.bus), mode: "markers", name: "bus voltage",
      marker: { color: f.buses.map((b) => b.v_pu), colorscale: "RdBu",
        cmin: (vmin ?? 0.95) - 0.02, cmax: (vmax ?? 1.05) + 0.02, size: 7,
        colorbar: { title: { text: "p.u." }, thickness: 10 } },
      hovertemplate: "%{text}: %{y:.4f} p.u.<extra></extra>" },
  ], { ...LAYOUT, title: { text: `Voltage along the feeder — interval ${f.t} ${when}` },
    xaxis: { title: { text: "hops from the slack bus" } },
    yaxis: { title: { text: "voltage [p.u.]" } },
    shapes: [...hline(vmin, "v min", "dash"), ...hline(vmax, "v max", "dash")] }, CONFIG);
  $("chart-voltage").dataset.t = String(f.t);
  const lines = [...f.lines].sort((a, b) => (b.loading_frac ?? 0) - (a.loading_frac ?? 0));
  const top = lines.slice(0, 30);
  Plotly.react("chart-loading", [{ type: "bar", x: top.map((l) => l.line),
    y: top.map((l) => 100 * (l.loading_frac ?? 0)), marker: { color: top.map((l) =>
      (l.loading_frac ?? 0) > 1 ? "#d62728" : "#fd8d3c") }, name: "loading" }],
  { ...LAYOUT, title: { text: `Line loadings — ${top.length} most loaded of ` +
      `${f.lines.length}, interval ${f.t}` },
  // line names are labels: plotly would read "1-2" as a date and "7" as a number
  xaxis: { type: "category" }, yaxis: { title: { text: "loading [%]" } },
  shapes: hline(100, "limit", "dash") }, CONFIG);
  $("chart-loading").dataset.t = String(f.t);
  const priced = f.buses.filter((b) => b.nodal_price_per_kwh !== null);
  Plotly.react("chart-nodal", priced.length ? [{ x: priced.map((b) => b.depth),
    y: priced.map((b) => b.nodal_price_per_kwh), text: priced.map((b) => b.bus),
    mode: "markers", name: "nodal price" }] : [],
  { ...LAYOUT, title: { text: priced.length
    ? `Nodal prices — interval ${f.t}` + (f.curtailed_kwh ? `, curtailed ${f.curtailed_kwh
      .toFixed(2)} kWh` : "")
    : `Nodal prices — none at interval ${f.t} (not re-cleared with the feeder)` },
  xaxis: { title: { text: "hops from the slack bus" } },
  yaxis: { title: { text: `price [${m.currency || ""}/kWh]` } } }, CONFIG);
  $("chart-nodal").dataset.t = String(f.t);
}
// ------------------------------------------------------------------ feeder map
// The figure comes once from api/feeder/map; each feeder state's `map` then restyles the
// drawn traces (edge colours, bus colours, sizes and hover texts), nothing is re-drawn.
// A feeder state without `map` (the layout still loading on the server) is drawn by
// fetching the figure of its interval, which waits for the layout.
function drawMap(f) {
  const M = P.map;
  if (!f || !P.meta.has_map || M.failed) return;
  if (M.drawn && f.map) { restyleMap(f); return; }
  M.pending = f;
  if (M.loading) return;
  M.loading = true;
  api(`api/feeder/map?t=${f.t}`).then((d) => {
    const fig = d.figure;
    return Plotly.react("chart-map", fig.data, { ...fig.layout, height: undefined,
      autosize: true }, CONFIG).then(() => {
      M.drawn = true; M.title = fig.layout.title.text;
      const next = M.pending; M.pending = null;
      if (next.map) restyleMap(next);
      else if (next.t !== d.t) drawMap(next);
      else $("chart-map").dataset.t = String(d.t);
    });
  }).catch((e) => { M.failed = e.status === 404; P.errors.push(String(e)); })
    .finally(() => { M.loading = false; });
}
function restyleMap(f) {
  const m = f.map, el = $("chart-map");
  Plotly.restyle(el, { "line.color": m.edge_color }, m.edges);
  Plotly.restyle(el, { "marker.color": [m.edge_color], text: [m.edge_text] }, [m.edge_hover]);
  Plotly.restyle(el, { "marker.color": [m.node_color], "marker.size": [m.node_size],
    text: [m.node_text] }, [m.nodes]);
  const when = f.timestamp ? xOf(f) : "";
  Plotly.relayout(el, { "title.text": P.map.title.replace(/^[^<]*/,
    `Feeder map — interval ${f.t} ${when}`) });
  el.dataset.t = String(f.t);
  P.map.restyles += 1;
}
function drawKpis(k) {
  if (!k) return;
  const cur = P.meta.currency || "";
  $("kpis").innerHTML = KPIS.filter(([key]) => key in k).map(([key, label, kind]) =>
    `<div class="kpi" id="kpi-${key}" data-value="${k[key] ?? ""}"><div class="v">` +
    `${fmt(k[key], kind, cur)}</div><div class="l">${label}</div></div>`).join("");
}

// ------------------------------------------------------------------ household table
function hhHeader() {
  const tr = document.querySelector("#hh-table thead tr");
  const cols = hhCols();
  if (tr.dataset.cols === cols.map(([c]) => c).join()) return;
  tr.dataset.cols = cols.map(([c]) => c).join();
  tr.innerHTML = cols.map(([c, l]) => `<th data-col="${c}">${l}</th>`).join("");
  if (tr.dataset.listening) return;
  tr.dataset.listening = "1";
  tr.addEventListener("click", (e) => {
    const th = e.target.closest("th");
    if (!th) return;
    const col = th.dataset.col;
    P.hhSort = { col, dir: P.hhSort.col === col && P.hhSort.dir === "asc" ? "desc" : "asc" };
    renderHouseholds();
  });
}
function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;",
    '"': "&quot;", "'": "&#39;" })[c]);
}
function renderHouseholds() {
  const q = $("hh-search").value.trim().toLowerCase();
  let rows = P.hh;
  if (q) rows = rows.filter((r) => String(r.agent_id).toLowerCase().includes(q) ||
    String(r.bus ?? "").toLowerCase().includes(q));
  const { col, dir } = P.hhSort, s = dir === "asc" ? 1 : -1;
  rows = [...rows].sort((a, b) => {
    const x = a[col], y = b[col];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * s;
  });
  hhHeader();
  for (const th of document.querySelectorAll("#hh-table th")) {
    th.dataset.sort = th.dataset.col === col ? dir : "";
  }
  const cur = P.meta.currency || "";
  $("hh-table").querySelector("tbody").innerHTML = rows.slice(0, HH_SHOWN).map((r) =>
    "<tr>" + hhCols().map(([c]) => {
      const v = r[c];
      if (typeof v === "boolean") return `<td data-value="${v}">${v ? "yes" : "no"}</td>`;
      if (typeof v !== "number") return `<td>${escapeHtml(v ?? "—")}</td>`;
      const digits = c === "bill" || c === "savings" ? 2 : 3;
      return `<td data-value="${v}">${v.toFixed(digits)}${c === "bill" ||
        c === "savings" ? " " + cur : ""}</td>`;
    }).join("") + "</tr>").join("");
  $("hh-count").textContent = `${Math.min(rows.length, HH_SHOWN)} of ${rows.length} shown` +
    (P.hhT !== null ? ` · interval ${P.hhT}` : "");
}
let hhPending = null, hhLast = 0;
function loadHouseholds(t, immediate) {
  // at most one request per second while following a running source
  const due = immediate ? 0 : Math.max(0, hhLast + 1000 - Date.now());
  clearTimeout(hhPending);
  hhPending = setTimeout(() => {
    hhLast = Date.now();
    api(`api/households?t=${t}&limit=10000`).then((d) => {
      P.hh = d.items; P.hhT = d.t; renderHouseholds();
    }).catch((e) => P.errors.push(String(e)));
  }, due);
}

// ------------------------------------------------------------------ interval selection
// interval t's book, feeder, map and households; the KPIs over 0..kpiT (default t)
function showInterval(t, kpiT) {
  $("t-label").textContent = String(t);
  const row = P.byT.get(t);
  $("t-time").textContent = row && row.timestamp ? xOf(row) : "";
  return Promise.all([
    api(`api/intervals/${t}/book`).then(drawBook).catch(() => null),
    api(`api/intervals/${t}/feeder`).then(drawFeeder).catch(() => drawFeeder(null)),
    api(`api/kpis?t=${kpiT ?? t}`).then(drawKpis).catch(() => null),
  ]).then(() => loadHouseholds(t, true));
}
function setLatest(t) {
  P.latestT = Math.max(P.latestT, t);
  const s = $("t-slider");
  s.max = String(Math.max(P.latestT, 0));
  if (P.selectedT === null) s.value = String(P.latestT);
}

// ------------------------------------------------------------------ pushed updates
function upsert(rows) {
  let appended = true;
  for (const r of rows) {
    if (P.byT.has(r.t) || (P.rows.length && r.t < P.rows[P.rows.length - 1].t)) {
      appended = false;
    }
  }
  for (const r of rows) {
    if (P.byT.has(r.t)) {
      const i = P.rows.findIndex((x) => x.t === r.t);
      P.rows[i] = r;
    } else {
      P.rows.push(r);
    }
    P.byT.set(r.t, r);
  }
  if (!appended) P.rows.sort((a, b) => a.t - b.t);
  return appended;
}
// Events are applied to the data at once and drawn at most every FLUSH_MS: a burst of
// intervals (a fast replay, a catch-up) costs one redraw, not one per interval.
const FLUSH_MS = 100;
const pending = { rows: [], revised: false, snapshot: null, events: 0 };
let flushTimer = null, lastFlush = 0;
function schedule() {
  if (flushTimer !== null) return;
  flushTimer = setTimeout(flush, Math.max(0, lastFlush + FLUSH_MS - Date.now()));
}
function flush() {
  flushTimer = null;
  lastFlush = Date.now();
  if (pending.revised) drawSeries(P.rows);
  else if (pending.rows.length) extendSeries(pending.rows);
  pending.rows = []; pending.revised = false;
  if (P.selectedT === null) {
    $("t-label").textContent = String(P.latestT);
    const row = P.byT.get(P.latestT);
    $("t-time").textContent = row && row.timestamp ? xOf(row) : "";
  }
  if (pending.snapshot) applySnapshot(pending.snapshot);
  pending.snapshot = null;
  P.drawn.push(Date.now());
  if (P.drawn.length > 10000) P.drawn.shift();
  P.updates += pending.events;
  pending.events = 0;
}
function onInterval(msg) {
  const ev = JSON.parse(msg.data);
  P.lastSeq = ev.seq;
  P.latencies.push(Date.now() / 1000 - ev.at);
  P.receipts.push([ev.t, Date.now()]);
  if (P.receipts.length > 10000) { P.receipts.shift(); P.latencies.shift(); }
  const rows = ev.rows || [];
  if (rows.length) {
    if (upsert(rows) && !pending.revised) pending.rows.push(...rows);
    else pending.revised = true;
  }
  setLatest(ev.t);
  if (ev.status) setStatus(ev.status);
  if (ev.kpis) pending.snapshot = ev;
  pending.events += 1;
  schedule();
}
// the newest interval's book, feeder, KPIs and households (full events only)
function applySnapshot(ev) {
  if (P.selectedT !== null || !ev.kpis) return;
  if (ev.book) drawBook(ev.book);
  if ("feeder" in ev) drawFeeder(ev.feeder);
  drawKpis(ev.kpis);
  loadHouseholds(P.latestT);
}
function onStatus(msg) {
  const ev = JSON.parse(msg.data);
  P.lastSeq = ev.seq;
  if (ev.status) setStatus(ev.status);
  if (ev.kpis) { pending.snapshot = ev; schedule(); }
}
function connect(since) {
  const es = new EventSource(`api/events?since=${since}` + (token ? `&token=${token}` : ""));
  es.addEventListener("interval", onInterval);
  es.addEventListener("status", onStatus);
  es.onopen = () => {
    const b = $("banner");
    if (b.dataset.reason === "dashboard") { b.hidden = true; b.dataset.reason = ""; }
  };
  es.onerror = () => {
    const b = $("banner");
    if (b.hidden || b.dataset.reason !== "source") {
      b.hidden = false; b.dataset.reason = "dashboard";
      b.textContent = "connection to the dashboard server lost — reconnecting…";
    }
  };
  P.es = es;
}

// ------------------------------------------------------------------ start
async function main() {
  P.meta = await api("api/meta");
  const st = await api("api/status");
  setStatus(st);
  $("name").textContent = P.meta.name;
  $("kind").textContent = P.meta.kind;
  document.title = `${P.meta.name} — p2pgrid dashboard`;
  hhHeader();
  $("hh-search").addEventListener("input", renderHouseholds);
  const rows = await api("api/intervals");
  upsert(rows);
  drawSeries(P.rows);
  setLatest(st.latest_t);
  // a finished run opens on its most telling interval (the most P2P trade, or the worst
  // grid state when limits were broken: api/meta's opening_t), not on the last night;
  // its KPI cards are the whole run's
  const opening = P.meta.opening_t;
  if (st.state === "browsing" && opening !== null && opening !== undefined && opening >= 0) {
    P.selectedT = opening; $("follow").checked = false; $("t-slider").value = String(opening);
    await showInterval(opening, st.latest_t);  // the KPI cards: the whole run
  } else if (st.latest_t >= 0) await showInterval(st.latest_t);
  else { drawBook(null); drawFeeder(null); }
  const slider = $("t-slider");
  let pending = null;
  slider.addEventListener("input", () => {
    P.selectedT = Number(slider.value);
    $("follow").checked = false;
    clearTimeout(pending);
    pending = setTimeout(() => showInterval(P.selectedT), 80);
  });
  $("follow").addEventListener("change", (e) => {
    P.selectedT = e.target.checked ? null : Number(slider.value);
    if (e.target.checked && P.latestT >= 0) { slider.value = String(P.latestT);
      showInterval(P.latestT); }
  });
  $("chart-price").on("plotly_click", (d) => {
    const row = P.rows[d.points[0].pointIndex];
    if (!row) return;
    P.selectedT = row.t; $("follow").checked = false; slider.value = String(row.t);
    showInterval(row.t);
  });
  connect(st.seq);
  P.ready = true;
  document.body.dataset.ready = "1";
}
main().catch((e) => {
  P.errors.push(String(e));
  setStatus({ state: "error", message: `cannot load the dashboard: ${e.message}` });
});
