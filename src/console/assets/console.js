// The lab console's page: reads the console's event stream (/events: the last minute once,
// then a tick twice a second), draws CP and AP side by side with uPlot, and sends the
// controls, the traffic switch, "try it" and scenario runs to the console's API. The page
// talks only to the console. `window.caplab` exposes what the charts hold, for the tests.
"use strict";
(function () {
  const SPAN_S = 60;
  const C = { blue: "#1f77b4", orange: "#ff7f0e", green: "#2ca02c", red: "#d62728", purple: "#9467bd" };
  const FAULT = "rgba(255,140,140,0.4)";
  const APPS = ["cp", "ap"];
  const BREAKERS = ["g1", "g2", "replication"];
  const BREAKER_COLORS = [C.blue, C.orange, C.green];
  const STATE_NAMES = ["closed", "half", "open"];

  let points = [];
  let last = null;
  const charts = { cp: {}, ap: {} };
  let tryToken = null;
  let trafficBusy = false;
  let scenarioFiles = [];

  const $ = (sel, root) => (root || document).querySelector(sel);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== null && v !== undefined) e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  };
  const fmt = (v, digits, unit) =>
    v === null || v === undefined || Number.isNaN(v) ? "–" : `${Number(v).toFixed(digits)}${unit || ""}`;
  const clock = (ms) => {
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
  };

  // ---- charts -------------------------------------------------------------------------

  // What each chart plots: a label, a unit, and per series the point field and its colour.
  const CHART_DEFS = [
    { id: "throughput", title: "Requests per second and availability", series: [
      { label: "requests/s", get: (p) => p.rps, stroke: C.green },
      { label: "availability %", get: (p) => (p.avail === null || p.avail === undefined ? null : p.avail * 100), stroke: C.blue, scale: "pct" },
    ] },
    { id: "latency", title: "Latency (ms, from the app's histogram)", series: [
      { label: "p50", get: (p) => p.p50, stroke: C.blue },
      { label: "p99", get: (p) => p.p99, stroke: C.orange },
    ] },
    { id: "staleness", title: "Staleness: data_staleness_ms per node, stale reads/s", series: [
      { label: "g1 staleness (/replication)", get: (p) => p.st_g1, stroke: C.blue },
      { label: "g2 staleness (/replication)", get: (p) => p.st_g2, stroke: C.orange },
      { label: "stale reads/s", get: (p) => p.stale, stroke: C.red, scale: "rate" },
    ] },
    { id: "breakers", title: "Circuit breakers (0 closed, 1 half-open, 2 open; dots: transitions)", series:
      // Each breaker's line is nudged apart (by 0.07) so three closed breakers stay visible.
      BREAKERS.map((b, i) => ({ label: `${b} breaker`, get: (p) => (p.br && p.br[i] !== null && p.br[i] !== undefined ? p.br[i] + (i - 1) * 0.07 : null), stroke: BREAKER_COLORS[i] })) },
    { id: "replication", title: "Replication lag (bytes) and AP queue depth", series: [
      { label: "lag bytes", get: (p) => p.lag, stroke: C.blue },
      { label: "AP queue depth", get: (p) => p.queue, stroke: C.purple, scale: "queue" },
    ] },
  ];

  function shadeFaults(u) {
    if (!last) return;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.fillStyle = FAULT;
    for (const w of last.windows) {
      const from = u.valToPos(w.from_ms / 1000, "x", true);
      const to = w.to_ms === null ? left + width : u.valToPos(w.to_ms / 1000, "x", true);
      const x0 = Math.max(left, from), x1 = Math.min(left + width, to);
      if (x1 > x0) ctx.fillRect(x0, top, x1 - x0, height);
    }
    ctx.restore();
  }

  function drawMarkers(u) {
    if (!last) return;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    ctx.save();
    ctx.strokeStyle = C.purple;
    ctx.lineWidth = 2;
    for (const m of last.markers) {
      const x = u.valToPos(m.t_ms / 1000, "x", true);
      if (x < left || x > left + width) continue;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + height);
      ctx.stroke();
    }
    ctx.restore();
  }

  function drawTransitions(u) {
    const ctx = u.ctx;
    ctx.save();
    for (let s = 1; s < u.data.length; s++) {
      const ys = u.data[s];
      ctx.fillStyle = BREAKER_COLORS[s - 1];
      for (let i = 1; i < ys.length; i++) {
        if (ys[i] === null || ys[i - 1] === null || ys[i] === ys[i - 1]) continue;
        const x = u.valToPos(u.data[0][i], "x", true);
        const y = u.valToPos(ys[i], "y", true);
        ctx.beginPath();
        ctx.arc(x, y, 4 * devicePixelRatio, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
    ctx.restore();
  }

  function makeChart(app, def, parent) {
    const box = el("div", { class: "chart", id: `chart-${app}-${def.id}` }, el("div", { class: "title" }, def.title));
    parent.append(box);
    const width = Math.max(300, parent.clientWidth - 4);
    const scales = { x: { time: true, range: () => xRange() } };
    const axes = [
      { space: 70, values: (u, splits) => splits.map((v) => new Date(v * 1000).toLocaleTimeString([], { hour12: false })) },
      { size: 62 },
    ];
    const extra = def.series.find((s) => s.scale);
    if (def.id === "breakers") {
      scales.y = { range: [-0.2, 2.2] };
      axes[1] = { size: 62, splits: [0, 1, 2], values: (u, vals) => vals.map((v) => STATE_NAMES[Math.round(v)] || "") };
    } else {
      scales.y = { range: (u, min, max) => [Math.min(0, min || 0), Math.max(max || 1, 1) * 1.1] };
    }
    if (extra) {
      scales[extra.scale] = extra.scale === "pct" ? { range: [0, 105] } : { range: (u, min, max) => [0, Math.max(max || 1, 1) * 1.1] };
      axes.push({ scale: extra.scale, side: 1, size: 44, grid: { show: false }, stroke: extra.stroke });
    }
    const opts = {
      width,
      height: 150,
      scales,
      axes,
      legend: { live: false },
      cursor: { show: false },
      series: [{}].concat(def.series.map((s) => ({
        label: s.label, stroke: s.stroke, width: 2, scale: s.scale || "y", spanGaps: false,
        paths: def.id === "breakers" ? uPlot.paths.stepped({ align: 1 }) : undefined,
        points: { show: false },
      }))),
      hooks: {
        drawClear: [shadeFaults],
        draw: def.id === "breakers" ? [drawMarkers, drawTransitions] : [drawMarkers],
      },
    };
    const u = new uPlot(opts, chartData(app, def), box);
    charts[app][def.id] = u;
  }

  function xRange() {
    const now = last ? last.t_ms / 1000 : Date.now() / 1000;
    return [now - SPAN_S, now];
  }

  function chartData(app, def) {
    const i = APPS.indexOf(app);
    const xs = points.map((p) => p.t_ms / 1000);
    return [xs].concat(def.series.map((s) => points.map((p) => {
      const v = s.get(p.apps[i]);
      return v === undefined ? null : v;
    })));
  }

  function redrawCharts() {
    for (const app of APPS) {
      for (const def of CHART_DEFS) {
        const u = charts[app][def.id];
        if (u) u.setData(chartData(app, def));
      }
    }
  }

  function resizeCharts() {
    for (const app of APPS) {
      const parent = $(`#app-${app} .charts`);
      for (const def of CHART_DEFS) {
        const u = charts[app][def.id];
        if (u) u.setSize({ width: Math.max(300, parent.clientWidth - 4), height: 150 });
      }
    }
  }

  // ---- topology picture ----------------------------------------------------------------

  const SVG = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, text) => {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };
  // Where each link runs in the picture, and where its name sits.
  const LINK_GEOMETRY = {
    g1: { d: "M130 135 L290 62", label: [205, 86] },
    g2: { d: "M130 165 L290 238", label: [205, 214] },
    cluster_g1: { d: "M452 138 L370 62", label: [430, 88] },
    cluster_g2: { d: "M452 162 L370 238", label: [430, 212] },
    sentinels: { d: "M75 120 L75 22 L505 22 L505 128", label: [290, 14] },
  };

  function drawTopology() {
    const root = $("#topology");
    root.replaceChildren();
    const links = new Map((last ? last.links : []).map((l) => [l.name, l]));
    const nodes = new Map((last ? last.nodes : []).map((n) => [n.name, n]));
    const primary = last ? last.sentinel_primary : null;
    const cp = last ? last.apps[0] : null;
    // Replication: the replica pulls from the primary through the primary's cluster link.
    const replDown = cp && cp.link_status && cp.link_status !== "up";
    root.append(svg("path", { d: "M330 84 L330 216", class: "repl" + (replDown ? " down" : ""), id: "topo-replication" }));
    root.append(svg("text", { x: 338, y: 150, class: "label", "text-anchor": "start", style: "text-anchor:start" },
      `replication ${cp && cp.link_status ? "(" + cp.link_status + ")" : ""}`));
    for (const [name, g] of Object.entries(LINK_GEOMETRY)) {
      const l = links.get(name);
      const cut = l ? !l.enabled : false;
      const slow = l ? l.toxics.length > 0 : false;
      const path = svg("path", { d: g.d, class: "link" + (cut ? " cut" : slow ? " slow" : ""), id: `topo-link-${name}` });
      path.style.cursor = "pointer";
      path.append(svg("title", {}, `${name}: ${l ? l.carries : ""} — click to ${cut ? "heal" : "cut"}`));
      path.addEventListener("click", () => control({ action: cut ? "heal" : "cut", link: name }));
      root.append(path);
      root.append(svg("text", { x: g.label[0], y: g.label[1], class: "label" + (cut ? " cut" : "") },
        `${name}${cut ? " ✂ cut" : slow ? " ⏱ " + l.toxics.join(", ") : ""}`));
    }
    const box = (x, y, w, h, cls, lines, id) => {
      root.append(svg("rect", { x, y, width: w, height: h, class: cls, id }));
      lines.forEach((t, i) => root.append(svg("text", { x: x + w / 2, y: y + h / 2 + (i - (lines.length - 1) / 2) * 14 }, t)));
    };
    box(20, 120, 110, 60, "", ["app_cp  app_ap", "(the apps)"], "topo-apps");
    for (const [name, y] of [["g1", 40], ["g2", 216]]) {
      const n = nodes.get(name);
      const state = n ? n.process : "running";
      const cls = [primary === name ? "primary" : "", state === "stopped" ? "frozen" : state === "down" ? "down" : ""].join(" ");
      const role = primary === name ? "primary" : "replica";
      box(290, y, 80, 44, cls, [`redis ${name}`, state === "running" ? role : state], `topo-node-${name}`);
    }
    box(452, 128, 100, 44, "", ["sentinels", "s1 s2 s3"], "topo-sentinels");
  }

  // ---- tables, cards, log ----------------------------------------------------------------

  function renderLinks() {
    const body = $("#links tbody");
    const rows = last.links.map((l) => {
      const cut = !l.enabled;
      const lat = el("input", { type: "number", min: 1, max: 10000, value: 300, id: `lat-${l.name}`, "aria-label": `latency on ${l.name} (ms)` });
      return el("tr", { id: `link-${l.name}` },
        el("td", {}, el("code", {}, l.name)),
        el("td", { class: "small" }, l.carries),
        el("td", { class: cut ? "state-bad" : l.toxics.length ? "state-warn" : "state-ok" },
          cut ? "CUT" : l.toxics.length ? l.toxics.join(", ") : "up"),
        el("td", {}, cut
          ? el("button", { class: "heal", id: `heal-${l.name}`, onclick: () => control({ action: "heal", link: l.name }) }, "heal")
          : el("button", { class: "cut", id: `cut-${l.name}`, onclick: () => control({ action: "cut", link: l.name }) }, "cut")),
        el("td", {}, lat, " ms ",
          el("button", { id: `latency-${l.name}`, onclick: () => control({ action: "latency", link: l.name, ms: Number($(`#lat-${l.name}`).value) }) }, "add"),
          " ",
          el("button", { id: `nolatency-${l.name}`, onclick: () => control({ action: "remove_latency", link: l.name }) }, "remove")));
    });
    // Keep the latency inputs the user typed into.
    const typed = {};
    body.querySelectorAll("input").forEach((i) => { typed[i.id] = i.value; });
    body.replaceChildren(...rows);
    for (const [id, v] of Object.entries(typed)) { const i = document.getElementById(id); if (i) i.value = v; }
    if (last.proxy_error) body.append(el("tr", {}, el("td", { colspan: 5, class: "state-bad" }, `the proxy API did not answer: ${last.proxy_error}`)));
  }

  function renderNodes() {
    const roles = last.apps[0].roles || {};
    const rows = last.nodes.map((n) => {
      const own = roles && roles[n.name] ? roles[n.name] : "?";
      const sent = last.sentinel_primary === n.name ? "primary" : last.sentinel_primary ? "replica" : "?";
      const button = (op, title) => el("button", { id: `node-${n.name}-${op}`, title, onclick: () => control({ action: "node", node: n.name, op }) }, op);
      return el("tr", { id: `node-${n.name}` },
        el("td", {}, el("code", {}, `redis ${n.name}`)),
        el("td", { class: n.process === "running" ? "state-ok" : n.process === "stopped" ? "state-warn" : "state-bad" }, n.process),
        el("td", {}, `${own} / ${sent}`),
        el("td", {},
          button("stop", "SIGSTOP: frozen, connections stay open"), " ",
          button("continue", "SIGCONT"), " ",
          button("kill", "SIGKILL"), " ",
          button("restart", "start it again from its config file, in the role Sentinel last gave it")));
    });
    $("#nodes tbody").replaceChildren(...rows);
    $("#primary-now").textContent = `the sentinels name ${last.sentinel_primary || "no primary (no answer)"} as primary`;
  }

  function card(k, v, cls) {
    return el("div", { class: "card" }, el("div", { class: "k" }, k), el("div", { class: "v " + (cls || "") }, v));
  }

  function renderApp(app, i) {
    const a = last.apps[i];
    const root = $(`#app-${app}`);
    const r = a.rates || {};
    const avail = r.availability;
    const cards = [
      card("status", a.up ? "answering" : "DOWN", a.up ? "state-ok" : "state-bad"),
      card("requests/s", fmt(r.requests_per_s, 1)),
      card("availability", fmt(avail === null || avail === undefined ? null : avail * 100, 1, " %"),
        avail === null || avail === undefined ? "" : avail >= 0.99 ? "state-ok" : avail >= 0.5 ? "state-warn" : "state-bad"),
      card("p50 / p99", `${fmt(r.p50_ms, 1)} / ${fmt(r.p99_ms, 1)} ms`),
      card("stale reads/s", fmt(r.stale_reads_per_s, 1), r.stale_reads_per_s > 0 ? "state-warn" : ""),
      card("stale reads (total)", fmt(a.stale_reads_total, 0)),
      card("staleness g1 / g2", `${fmt(a.staleness_ms[0], 0)} / ${fmt(a.staleness_ms[1], 0)} ms`),
      card("replication lag", a.lag_bytes === null ? "unknown" : `${a.lag_bytes} B`),
      card("believed primary", a.primary || "–"),
      card("replica link", a.link_status || "–", a.link_status === "up" ? "state-ok" : "state-bad"),
    ];
    if (app === "ap") cards.push(card("queue depth", fmt(a.queue_depth, 0), a.queue_depth > 0 ? "state-warn" : ""));
    $(".cards", root).replaceChildren(...cards);
    $(".breakers", root).replaceChildren(...a.breakers.map((b) =>
      el("span", { class: `breaker ${b.state}`, id: `breaker-${app}-${b.name}`, "data-state": b.state },
        `${b.name} breaker: ${b.state.replace("_", "-")} `,
        el("span", { class: "muted" }, `(${b.transitions} transitions${b.last_transition_unix_ms ? ", last " + clock(b.last_transition_unix_ms) : ""})`))));
    if (!a.up && a.error) $(".breakers", root).append(el("span", { class: "state-bad small" }, a.error));
  }

  function renderLog() {
    const items = last.log.slice().reverse().map((e) =>
      el("li", { class: e.ok ? "ok" : "failed" },
        el("span", { class: "t" }, clock(e.t_ms)),
        el("span", { class: "a" }, e.action + (e.ok ? "" : " — failed")),
        el("span", {}, e.detail),
        el("span", { class: "muted" }, e.took_ms >= 50 ? ` (${e.took_ms} ms)` : "")));
    $("#log").replaceChildren(...items);
  }

  function renderTraffic() {
    const t = last.traffic;
    if (!trafficBusy) $("#traffic").checked = t.on;
    $("#traffic-info").textContent = t.on
      ? `on: ${t.workers} client loops per personality; ${fmt(t.ops_per_s[0], 0)} ops/s on CP, ${fmt(t.ops_per_s[1], 0)} on AP; ` +
        `stale reads the client itself saw: CP ${t.client_stale_reads[0]}, AP ${t.client_stale_reads[1]}`
      : "off: the charts move only with your own requests";
  }

  function renderScenario() {
    const s = last.scenario;
    const root = $("#scenario-status");
    $("#scenario-run").disabled = s.running;
    if (!s.name) { root.replaceChildren(el("p", { class: "muted small" }, "No scenario run from this page yet.")); return; }
    const kids = [];
    if (s.running) {
      const elapsed = last.t_ms - s.started_ms;
      kids.push(el("p", {}, `${s.name}: ${s.stage === "checking" ? "checking the history…" : "running"}`));
      kids.push(el("progress", { max: s.planned_ms, value: Math.min(elapsed, s.planned_ms) }));
    } else {
      kids.push(el("p", {}, `${s.name}: `, el("span", { class: s.stage, id: "scenario-verdict" }, (s.stage || "").toUpperCase()),
        s.report ? el("span", {}, " — ", el("a", { href: s.report, target: "_blank", id: "scenario-report" }, "report.html")) : null));
      if (s.error) kids.push(el("p", { class: "state-bad" }, s.error));
      if (s.thresholds.length) {
        kids.push(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "threshold"), el("th", {}, "measured"), el("th", {}, ""), el("th", {}, "lesson"))),
          el("tbody", {}, ...s.thresholds.map((t) => el("tr", {},
            el("td", {}, el("code", {}, t.threshold)), el("td", {}, fmt(t.measured, 3)),
            el("td", { class: t.passed ? "passed" : "failed" }, t.passed ? "holds" : "fails"),
            el("td", { class: "small" }, t.lesson))))));
      }
    }
    root.replaceChildren(...kids);
  }

  // A section with buttons or links is rebuilt only when what it shows changed: rebuilding
  // it twice a second would swallow a click that lands between mousedown and mouseup.
  const shown = {};
  function changed(section, value) {
    const json = JSON.stringify(value);
    if (shown[section] === json) return false;
    shown[section] = json;
    return true;
  }

  function render() {
    $("#where").textContent = `lab ${last.lab_dir} · console on ${last.listen}` +
      (last.loopback ? " (loopback only: only this machine can open it)" : " (NOT loopback: anyone who reaches it can stop the lab)");
    const roles = last.apps[0].roles;
    if (changed("topology", [last.links, last.nodes, last.sentinel_primary, last.apps[0].link_status])) drawTopology();
    if (changed("links", [last.links, last.proxy_error])) renderLinks();
    if (changed("nodes", [last.nodes, roles, last.sentinel_primary])) renderNodes();
    APPS.forEach(renderApp);
    if (changed("log", last.log)) renderLog();
    renderTraffic();
    const s = last.scenario;
    if (changed("scenario", s.running ? [s.name, Math.floor((last.t_ms - s.started_ms) / 1000)] : s)) renderScenario();
    redrawCharts();
  }

  // ---- actions -------------------------------------------------------------------------

  async function post(path, body) {
    const resp = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let json = null;
    try { json = await resp.json(); } catch (e) { json = { error: `answer was not JSON (${resp.status})` }; }
    return { status: resp.status, json };
  }

  function flash(text, ok) {
    const f = $("#footer");
    f.textContent = `${clock(Date.now())} ${text}`;
    f.className = "small " + (ok ? "muted" : "state-bad");
  }

  async function control(body) {
    const buttons = document.querySelectorAll("#controls button, #topology path");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const { status, json } = await post("/api/control", body);
      flash(status === 200 ? `${json.action}: ${json.detail}` : `refused (${status}): ${json.error}`, status === 200);
    } catch (e) {
      flash(`the console did not answer: ${e}`, false);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  }

  async function setTraffic(on) {
    trafficBusy = true;
    try {
      const { status, json } = await post("/api/traffic", { on });
      if (status !== 200) flash(`traffic: ${json.error}`, false);
    } finally {
      trafficBusy = false;
    }
  }

  async function tryIt(via, op) {
    const key = $("#try-key").value;
    const body = { via, op, key };
    if (op === "write") body.value = $("#try-value").value;
    if ($("#try-use-token").checked && tryToken) body.token = tryToken;
    const out = $("#try-answer");
    const { status, json } = await post("/api/try", body);
    if (status !== 200) { out.replaceChildren(el("p", { class: "state-bad" }, json.error)); return; }
    const b = json.body && typeof json.body === "object" ? json.body : {};
    const facts = [];
    const fact = (k, v, cls) => facts.push(el("div", {}, el("span", { class: "muted" }, k + ": "), el("b", { class: cls || "" }, String(v))));
    fact("request", `${json.request} via ${via.toUpperCase()}`);
    fact("status", json.status === 0 ? "no answer" : json.status, json.status >= 200 && json.status < 300 ? "state-ok" : "state-bad");
    for (const k of ["outcome", "version", "value", "node", "stale", "staleness_ms", "session_guarantee", "error", "reason"]) {
      if (b[k] !== undefined && b[k] !== null) fact(k, b[k], k === "stale" && b[k] ? "state-warn" : k === "session_guarantee" && !b[k] ? "state-bad" : "");
    }
    fact("session token", json.sent_token ? "sent" : "not sent");
    if (json.session_token) {
      const changed = json.session_token !== tryToken;
      tryToken = json.session_token;
      $("#try-token").textContent = tryToken.slice(0, 16) + "…";
      fact("answered token", changed ? "a new one (kept for the next request)" : "the same");
    }
    fact("round trip", `${json.took_ms.toFixed(1)} ms`);
    out.replaceChildren(...facts, el("details", {}, el("summary", {}, "the whole answer"), el("pre", {}, JSON.stringify(json.body, null, 2))));
  }

  async function loadScenarios() {
    try {
      const resp = await fetch("/api/scenarios");
      const json = await resp.json();
      scenarioFiles = json.scenarios || [];
      if (!resp.ok) $("#scenario-summary").textContent = json.error;
    } catch (e) {
      scenarioFiles = [];
    }
    const select = $("#scenario-file");
    select.replaceChildren(...scenarioFiles.map((s) =>
      el("option", { value: s.file, disabled: s.error ? "disabled" : null }, s.name ? `${s.name} (${s.duration_s} s, ${s.targets})` : `${s.file} (invalid)`)));
    showScenarioSummary();
  }

  function showScenarioSummary() {
    const s = scenarioFiles.find((f) => f.file === $("#scenario-file").value);
    $("#scenario-summary").textContent = s ? (s.error || s.summary || "") : "";
  }

  async function runScenario() {
    const file = $("#scenario-file").value;
    if (!file) return;
    const { status, json } = await post("/api/scenario", { file });
    flash(status === 202 ? `scenario ${json.name} started` : `scenario refused (${status}): ${json.error}`, status === 202);
  }

  // ---- wiring --------------------------------------------------------------------------

  function connect() {
    const source = new EventSource("/events");
    const conn = $("#conn");
    source.addEventListener("open", () => { conn.textContent = "live"; conn.className = "badge ok"; });
    source.addEventListener("error", () => { conn.textContent = "reconnecting…"; conn.className = "badge bad"; });
    source.addEventListener("history", (ev) => {
      const h = JSON.parse(ev.data);
      points = h.points;
    });
    source.addEventListener("tick", (ev) => {
      last = JSON.parse(ev.data);
      if (!points.length || points[points.length - 1].t_ms < last.point.t_ms) points.push(last.point);
      const horizon = last.t_ms - SPAN_S * 1000;
      while (points.length && points[0].t_ms < horizon) points.shift();
      render();
    });
  }

  function init() {
    for (const app of APPS) {
      const parent = $(`#app-${app} .charts`);
      for (const def of CHART_DEFS) makeChart(app, def, parent);
    }
    document.querySelectorAll("#controls button[data-action]").forEach((b) =>
      b.addEventListener("click", () => control({ action: b.dataset.action })));
    $("#traffic").addEventListener("change", (ev) => setTraffic(ev.target.checked));
    document.querySelectorAll("#try button").forEach((b) => b.addEventListener("click", () => tryIt(b.dataset.via, b.dataset.op)));
    $("#scenario-file").addEventListener("change", showScenarioSummary);
    $("#scenario-run").addEventListener("click", runScenario);
    window.addEventListener("resize", resizeCharts);
    drawTopology();
    loadScenarios();
    connect();
  }

  window.caplab = {
    charts,
    // The data a chart plots now: [times, ...series], as uPlot holds it.
    chartData: (app, id) => (charts[app][id] ? charts[app][id].data : null),
    last: () => last,
    points: () => points,
  };
  init();
})();
