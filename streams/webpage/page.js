"use strict";
(() => {
  const SVG = "http://www.w3.org/2000/svg";
  const LAYERS = ["local", "regional", "energy"];
  const rates = [];
  let polls = 0;
  const $ = (id) => document.getElementById(id);

  const int = (n) => Math.round(n).toLocaleString("en-US");
  const num = (n, d) => (n === null || n === undefined ? "–" : Number(n).toFixed(d));
  const usd = (n) => (n < 0 ? "-" : "") + "$" + Math.abs(n).toFixed(Math.abs(n) < 10 ? 4 : 2);
  const grams = (g) => {
    const a = Math.abs(g);
    if (a >= 1e6) return (g / 1e6).toFixed(3) + " t";
    if (a >= 1e3) return (g / 1e3).toFixed(3) + " kg";
    return g.toFixed(1) + " g";
  };
  const dual = (v) => (v === null || v === undefined ? "–" : v === 0 ? "0" : v.toExponential(2));
  const pct = (p) => (p === null || p === undefined ? "–" : p.toFixed(1) + "%");
  const age = (s) => {
    if (s === null || s === undefined) return "no signal";
    if (s < 120) return s.toFixed(1) + " s";
    if (s < 7200) return (s / 60).toFixed(1) + " min";
    if (s < 172800) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  };

  function set(id, text, value) {
    const el = $(id);
    el.textContent = text;
    if (value !== undefined) el.dataset.value = String(value);
  }

  function cell(tr, cls, text, value) {
    const td = document.createElement("td");
    td.className = cls;
    td.textContent = text;
    if (value !== undefined && value !== null) td.dataset.value = String(value);
    tr.appendChild(td);
    return td;
  }

  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    return el;
  }

  function renderBars(byRegion) {
    const svg = $("region-bars");
    svg.replaceChildren();
    const rows = Object.entries(byRegion).map(([r, layers]) => {
      const total = Object.values(layers).reduce((a, b) => a + b, 0);
      return [r, layers, total];
    });
    rows.sort((a, b) => b[2] - a[2]);
    const width = 1000, left = 240, right = 90, rowH = 24;
    const height = Math.max(1, rows.length) * rowH + 4;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.setAttribute("height", String(height));
    const max = Math.max(1, ...rows.map((r) => r[2]));
    rows.forEach(([region, layers, total], k) => {
      const y = k * rowH + 2;
      const g = svgEl("g", { "data-region": region, "data-value": total });
      g.appendChild(svgEl("text", { x: 0, y: y + 16 }, region));
      let x = left;
      const order = LAYERS.concat(Object.keys(layers).filter((l) => !LAYERS.includes(l)));
      for (const layer of order) {
        const n = layers[layer] || 0;
        if (n <= 0) continue;
        const w = ((width - left - right) * n) / max;
        const rect = svgEl("rect", { x, y: y + 3, width: Math.max(w, 1), height: rowH - 8,
          class: LAYERS.includes(layer) ? layer : "none" });
        rect.appendChild(svgEl("title", {}, `${region} ${layer}: ${int(n)}`));
        g.appendChild(rect);
        x += w;
      }
      g.appendChild(svgEl("text", { x: x + 6, y: y + 16, class: "count" }, int(total)));
      svg.appendChild(g);
    });
    if (!rows.length) svg.appendChild(svgEl("text", { x: 0, y: 18, class: "count" }, "no placements yet"));
  }

  function renderRegions(regions) {
    const body = $("regions-body");
    body.replaceChildren();
    for (const r of regions) {
      const tr = document.createElement("tr");
      tr.dataset.region = r.region;
      cell(tr, "region", r.region);
      cell(tr, "placed", int(r.placed), r.placed);
      cell(tr, "age", age(r.signal_age_s), r.signal_age_s);
      cell(tr, "wall-age", age(r.signal_wall_age_s), r.signal_wall_age_s);
      cell(tr, "price", num(r.price_usd_per_mwh, 2), r.price_usd_per_mwh);
      cell(tr, "carbon", num(r.marginal_gco2_per_kwh, 1), r.marginal_gco2_per_kwh);
      cell(tr, "healthy", r.healthy ? "yes" : "no");
      cell(tr, "mu", dual(r.mu_usd_per_wh), r.mu_usd_per_wh);
      cell(tr, "load", `${num(r.load_kw, 2)} / ${num(r.capacity_kw, 0)}`, r.load_kw);
      body.appendChild(tr);
    }
  }

  function renderShares(sh) {
    const head = $("shares-head"), body = $("shares-body");
    head.replaceChildren();
    body.replaceChildren();
    const th = (t) => { const e = document.createElement("th"); e.textContent = t; head.appendChild(e); };
    th("demand group");
    if (!sh) {
      set("shares-leader", "–");
      set("shares-status", "no re-solve installed yet");
      set("shares-solve", "–");
      set("shares-more", "");
      return;
    }
    set("shares-leader", sh.leader === null ? "unknown" : sh.leader);
    set("shares-status", sh.status);
    set("shares-solve", sh.solve_s === null ? "–" : (sh.solve_s * 1000).toFixed(1) + " ms");
    sh.regions.forEach((r) => th(r));
    th("unserved");
    const mu = document.createElement("tr");
    mu.className = "duals";
    cell(mu, "group", "dual µ $/Wh");
    sh.regions.forEach((r) => {
      const v = sh.mu_usd_per_wh[r];
      cell(mu, "mu", dual(v), v);
    });
    cell(mu, "unserved", "");
    body.appendChild(mu);
    sh.groups.forEach((g, k) => {
      const tr = document.createElement("tr");
      cell(tr, "group", g);
      (sh.shares[k] || []).forEach((s) => cell(tr, "share", s === null ? "–" : (100 * s).toFixed(1) + "%", s));
      const u = sh.unserved_share[k];
      cell(tr, "unserved", u === null || u === undefined ? "–" : (100 * u).toFixed(1) + "%", u);
      body.appendChild(tr);
    });
    set("shares-more", sh.n_groups > sh.groups.length ? `first ${sh.groups.length} of ${sh.n_groups} groups` : "");
  }

  function render(s) {
    set("worker-id", s.worker_id);
    set("group-id", s.group_id);
    const badge = $("leader-badge");
    badge.textContent = s.is_leader ? "leader" : "follower";
    badge.className = s.is_leader ? "badge leader" : "badge";
    set("uptime", age(s.uptime_s));
    set("updated", new Date(s.now * 1000).toISOString().slice(11, 19) + " UTC");
    set("router-clock", s.router_clock === null ? "none yet"
      : new Date(s.router_clock * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC", s.router_clock);
    set("decisions-rate", s.decisions_per_s.toFixed(1), s.decisions_per_s);
    set("decisions-total", int(s.decisions), s.decisions);
    set("placed-total", int(s.placed), s.placed);
    set("rejected-total", int(s.rejected), s.rejected);
    set("dead-letters", int(s.dead_letters), s.dead_letters);
    const u = s.savings.energy_usd, c = s.savings.carbon_g;
    set("saved-usd", usd(u.saved), u.saved);
    set("saved-usd-pct", pct(u.saved_pct), u.saved_pct);
    set("baseline-usd", usd(u.baseline), u.baseline);
    set("placed-usd", usd(u.placed), u.placed);
    set("saved-carbon", grams(c.saved), c.saved);
    set("saved-carbon-pct", pct(c.saved_pct), c.saved_pct);
    set("baseline-carbon", grams(c.baseline), c.baseline);
    set("placed-carbon", grams(c.placed), c.placed);
    set("shares-version", String(s.shares_version), s.shares_version);
    set("signals-version", String(s.signals_version), s.signals_version);
    const reasons = Object.entries(s.rejected_by_reason).map(([r, n]) => `${r} ${int(n)}`).join(", ");
    set("rejected-reasons", reasons ? "· rejected: " + reasons : "");
    rates.push(s.decisions_per_s);
    if (rates.length > 60) rates.shift();
    const top = Math.max(1, ...rates);
    $("rate-line").setAttribute("points",
      rates.map((r, k) => `${(200 * k) / Math.max(1, rates.length - 1)},${(40 - (38 * r) / top).toFixed(1)}`).join(" "));
    renderBars(s.by_region);
    renderRegions(s.regions);
    renderShares(s.shares);
  }

  async function poll() {
    try {
      const res = await fetch("/api/state", { cache: "no-store" });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      render(await res.json());
      polls += 1;
      document.body.dataset.polls = String(polls);
      document.body.dataset.state = "live";
      $("error").hidden = true;
    } catch (err) {
      document.body.dataset.state = "error";
      $("error").hidden = false;
      $("error").textContent = "worker unreachable: " + err.message;
    } finally {
      setTimeout(poll, 1000);
    }
  }
  poll();
})();
