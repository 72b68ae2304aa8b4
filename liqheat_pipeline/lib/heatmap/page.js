// Expands the page's compact cell arrays into the Plotly figure for the chosen view.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("liqheat-data").textContent);
  const FIGURE = JSON.parse(document.getElementById("liqheat-figure").textContent);
  const plot = document.getElementById("liqheat-plot");
  const RANGES = DATA.ranges; // name -> span (ms) and marker size and opacity
  const TRACE = { heatLong: 0, heatShort: 1, liqLong: 2, liqShort: 3, priceCasing: 4, price: 5,
                  barLong: 6, barShort: 7, cumLong: 8, cumShort: 9,
                  observedLong: 10, observedShort: 11, coverage: 12 };
  const PRICE_LINE = FIGURE.data[TRACE.price].line.color;

  // Arrays arrive gzip-compressed and base64-encoded; the browser inflates them natively.
  function base64Bytes(b64) {
    if (Uint8Array.fromBase64) return Uint8Array.fromBase64(b64);
    const raw = atob(b64);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }
  async function unpack(b64, Type) {
    const packed = base64Bytes(b64);
    const stream = new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Type(await new Response(stream).arrayBuffer());
  }

  // A float32 is written through this scratch and read back as its bits.
  const scratch = new Float32Array(1), scratchBits = new Uint32Array(scratch.buffer);

  // Values arrive as byte planes of the zigzag-coded difference of each value's float32 bits
  // from a prediction: the bin's previous value times the column's factor, nothing at a bin's
  // first cell (page.py's encode_values). Cells are ordered by key, row and col.
  async function cellArrays(encoded) {
    const [col, row, key, planes] = await Promise.all([
      unpack(encoded.col, Uint16Array), unpack(encoded.row, Uint16Array),
      unpack(encoded.key, Uint8Array), unpack(encoded.value, Uint8Array),
    ]);
    const n = key.length, factors = encoded.factors;
    const bits = new Uint32Array(n), value = new Float32Array(bits.buffer);
    for (let i = 0; i < n; i++) {
      const zigzag = planes[i] | (planes[n + i] << 8) | (planes[2 * n + i] << 16)
        | (planes[3 * n + i] << 24);
      let predicted = 0;
      if (i > 0 && key[i] === key[i - 1] && row[i] === row[i - 1]) {
        scratch[0] = value[i - 1] * factors[col[i]];
        predicted = scratchBits[0];
      }
      bits[i] = predicted + ((zigzag >>> 1) ^ -(zigzag & 1));
    }
    return { col, row, key, value };
  }

  const atMinute = (m) => DATA.start + m * 60e3;

  // The price path, observed liquidations and coverage drawn with a set of grids: the short
  // ranges' (fine, coarse) or the long grid's, each at its own resolution.
  async function series(encoded) {
    const candles = { minute: await unpack(encoded.candles.minute, Int32Array) };
    for (const name of ["low", "high", "close"]) {
      candles[name] = await unpack(encoded.candles[name], Float32Array);
    }
    candles.time = Array.from(candles.minute, atMinute);
    const observed = Object.assign({}, encoded.observed, {
      start: encoded.observed.minute.map(atMinute),
      width: encoded.observed.minutes.map((m) => m * 60e3),
    });
    return { candles, observed, observedLabel: encoded.observed_label, coverage: encoded.coverage };
  }

  // Grids and series are decoded when first drawn (the first view needs one grid), each once.
  const decoded = {};
  function once(name, decode) {
    if (!(name in decoded)) decoded[name] = decode();
    return decoded[name];
  }
  function decodedGrid(name) {
    return once(name, async () => {
      const g = DATA.grids[name];
      const [active, consumed, drawnWith] = await Promise.all([
        cellArrays(g.active), cellArrays(g.consumed),
        name === "long" ? once("long series", () => series(DATA.long))
          : once("short series", () => series(DATA)),
      ]);
      return Object.assign({}, g, { active, consumed, series: drawnWith });
    });
  }
  const rowPrice = (grid, r) => grid.y0 + r * grid.bin_size;

  const state = { range: DATA.default_range, tier: 0, scale: "linear", mapTime: DATA.map_time };

  // Tier option 0 is "all tiers"; option i > 0 is the (i-1)-th stored tier. Without per-tier
  // snapshots there is a single stored pseudo-tier that already holds every tier.
  function keep(key) {
    return state.tier === 0 || (key >> 1) === state.tier - 1;
  }

  // Dense (rows x columns) matrices of the selected tier's active USD, null where empty.
  function matrices(grid) {
    const cells = grid.active;
    const long = [], short = [];
    for (let r = 0; r < grid.rows; r++) {
      long.push(new Array(grid.n).fill(null));
      short.push(new Array(grid.n).fill(null));
    }
    for (let i = 0; i < cells.value.length; i++) {
      const key = cells.key[i];
      if (!keep(key)) continue;
      const target = key & 1 ? short : long;
      const row = target[cells.row[i]];
      row[cells.col[i]] = (row[cells.col[i]] || 0) + cells.value[i];
    }
    return { long, short };
  }

  function usd(value) {
    const units = [[1e9, "B"], [1e6, "M"], [1e3, "k"]];
    for (const [size, suffix] of units) {
      if (value >= size) return "$" + +(value / size).toPrecision(3) + suffix;
    }
    return "$" + +value.toPrecision(3);
  }

  function quantile(sorted, q) {
    if (!sorted.length) return 1;
    return sorted[Math.min(sorted.length - 1, Math.floor(q * (sorted.length - 1)))];
  }

  // The non-empty cells from column ``firstCol`` on, sorted (a typed array sorts natively).
  function visibleValues(m, firstCol) {
    const columns = m.long.length ? Math.max(0, m.long[0].length - firstCol) : 0;
    const values = new Float64Array(2 * m.long.length * columns);
    let count = 0;
    for (const z of [m.long, m.short]) {
      for (const row of z) {
        for (let c = firstCol; c < row.length; c++) if (row[c] > 0) values[count++] = row[c];
      }
    }
    return values.subarray(0, count).sort();
  }

  function transform(z, log) {
    return log ? z.map((row) => row.map((v) => (v > 0 ? Math.log10(v) : null))) : z;
  }

  function priceBand(candles, t0, t1) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < candles.time.length; i++) {
      if (candles.time[i] < t0 || candles.time[i] >= t1) continue;
      lo = Math.min(lo, candles.low[i]);
      hi = Math.max(hi, candles.high[i]);
    }
    if (!isFinite(lo)) return null;
    const pad = Math.max((hi - lo) * 0.5, hi * 0.035);
    return [lo - pad, hi + pad];
  }

  function closeAt(candles, t) {
    let found = null;
    for (let i = 0; i < candles.time.length && candles.time[i] <= t; i++) {
      found = candles.close[i];
    }
    return found;
  }

  // Modelled liquidations of one side in the columns from ``firstCol`` on: a marker per cell
  // with the selected tiers summed (a tier's marker would hide the others' at the same spot;
  // SVG markers are styled one by one, so the markers out of view are left out).
  function markers(grid, side, firstCol) {
    const cells = grid.consumed;
    const usdByCell = new Map();
    for (let i = 0; i < cells.value.length; i++) {
      const key = cells.key[i];
      if ((key & 1) !== side || !keep(key) || cells.col[i] < firstCol) continue;
      const cell = cells.col[i] * grid.rows + cells.row[i];
      usdByCell.set(cell, (usdByCell.get(cell) || 0) + cells.value[i]);
    }
    const x = [], y = [], v = [];
    for (const [cell, usd] of usdByCell) {
      x.push(grid.t0 + (Math.floor(cell / grid.rows) + 0.5) * grid.step);
      y.push(rowPrice(grid, cell % grid.rows) + grid.bin_size / 2);
      v.push(usd);
    }
    return { x, y, v };
  }

  function mapColumn(grid) {
    if (state.mapTime === null) return null;
    const col = Math.floor((state.mapTime - grid.t0) / grid.step);
    return col >= 0 && col < grid.n ? col : null;
  }

  // Cumulative curves at one column: a fall to a long bin's lower edge liquidates it and every
  // long bin above; a rise to a short bin's upper edge liquidates it and every short bin below.
  function liquidationMap(grid, heat, col) {
    const price = [], longBar = [], shortBar = [];
    for (let r = 0; r < grid.rows; r++) {
      price.push(rowPrice(grid, r) + grid.bin_size / 2);
      longBar.push(col === null ? 0 : heat.long[r][col] || 0);
      shortBar.push(col === null ? 0 : heat.short[r][col] || 0);
    }
    const cumLong = { x: [], y: [] }, cumShort = { x: [], y: [] };
    let total = 0;
    for (let r = grid.rows - 1; r >= 0; r--) {
      if (longBar[r] > 0) {
        total += longBar[r]; cumLong.x.push(total); cumLong.y.push(rowPrice(grid, r));
      }
    }
    total = 0;
    for (let r = 0; r < grid.rows; r++) {
      if (shortBar[r] > 0) {
        total += shortBar[r]; cumShort.x.push(total); cumShort.y.push(rowPrice(grid, r + 1));
      }
    }
    return { price, longBar, shortBar, cumLong, cumShort };
  }

  function sizes(v, scale) {
    const max = v.reduce((a, b) => Math.max(a, b), 1);
    return v.map((value) => scale * (5 + 13 * Math.sqrt(value / max)));
  }

  // Ticks 0, step, 2 step ... up to hi, the step 1, 2 or 5 times a power of ten (3 to 6 ticks).
  function linearTicks(hi) {
    if (!(hi > 0)) return [0];
    const power = Math.pow(10, Math.floor(Math.log10(hi / 4)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => hi / s <= 5);
    const ticks = [];
    for (let i = 0; i * step <= hi * (1 + 1e-9); i++) ticks.push(i * step);
    return ticks;
  }

  // Ticks of a log scale over [lo, hi] (USD): the powers of ten, with their triples when there
  // are fewer than three powers.
  function logTicks(lo, hi) {
    const within = (multiples) => {
      const ticks = [];
      for (let p = Math.floor(Math.log10(lo)); p <= Math.ceil(Math.log10(hi)); p++) {
        for (const m of multiples) {
          const tick = m * Math.pow(10, p);
          if (tick >= lo * (1 - 1e-9) && tick <= hi * (1 + 1e-9)) ticks.push(tick);
        }
      }
      return ticks;
    };
    const powers = within([1]);
    return powers.length >= 3 ? powers : within([1, 3]);
  }

  // Explicit USD ticks (k, M, B suffixes) on ``axis``, at ``ticks`` in USD drawn at ``at``.
  function usdTicks(axis, ticks, at = ticks) {
    Object.assign(axis, { tickmode: "array", tickvals: at, ticktext: ticks.map(usd) });
  }

  // A map axis from 0 to a little beyond the largest value drawn on it.
  function mapAxis(axis, values) {
    const top = values.reduce((a, b) => Math.max(a, b), 0);
    if (top > 0) axis.range = [0, 1.05 * top];
    usdTicks(axis, linearTicks(top));
  }

  // The observed panel's axis: longs drawn below zero, shorts above, scaled to the buckets in
  // view; tick labels show USD without the sign.
  function observedAxis(axis, observed, x0, x1) {
    let top = 0;
    for (let i = 0; i < observed.start.length; i++) {
      if (observed.start[i] + observed.width[i] <= x0 || observed.start[i] >= x1) continue;
      top = Math.max(top, observed.long[i], observed.short[i]);
    }
    if (top === 0) {
      axis.range = [-1, 1];
      axis.showticklabels = false;
      return;
    }
    axis.range = [-1.1 * top, 1.1 * top];
    axis.tickvals = [-top, 0, top];
    axis.ticktext = [usd(top), "0", usd(top)];
  }

  // The grid a range of ``span`` ms is drawn with.
  function gridName(span) {
    return span <= DATA.fine_span ? "fine"
      : span <= DATA.coarse_span || !DATA.grids.long ? "coarse" : "long";
  }

  async function render() {
    const range = state.range;
    const grid = await decodedGrid(gridName(RANGES[range].span));
    if (range !== state.range) return; // chosen while decoding: a later render draws it
    const view = RANGES[range], span = view.span;
    const { candles, observed, coverage } = grid.series;
    const x1 = DATA.end, x0 = DATA.end - span;
    const heat = matrices(grid);
    const firstCol = Math.max(0, Math.floor((x0 - grid.t0) / grid.step));
    const values = visibleValues(heat, firstCol);
    const log = state.scale === "log";
    // Both scales saturate at the same quantile; the log scale's floor is a fixed number of
    // decades below it (style.LOG_DECADES says why).
    const top = quantile(values, DATA.saturation_quantile);
    const cmax = log ? Math.log10(top) : top;
    const cmin = log ? cmax - DATA.log_decades : 0;
    const xs = Array.from({ length: grid.n }, (_, c) => grid.t0 + (c + 0.5) * grid.step);
    const ys = Array.from({ length: grid.rows }, (_, r) => rowPrice(grid, r) + grid.bin_size / 2);
    const liqLong = markers(grid, 0, firstCol), liqShort = markers(grid, 1, firstCol);
    const col = mapColumn(grid);
    const map = liquidationMap(grid, heat, col);
    const data = FIGURE.data.map((trace) => Object.assign({}, trace));
    Object.assign(data[TRACE.heatLong], { x: xs, y: ys, z: transform(heat.long, log), customdata: heat.long });
    Object.assign(data[TRACE.heatShort], { x: xs, y: ys, z: transform(heat.short, log), customdata: heat.short });
    for (const [index, liq] of [[TRACE.liqLong, liqLong], [TRACE.liqShort, liqShort]]) {
      Object.assign(data[index], { x: liq.x, y: liq.y, customdata: liq.v });
      data[index].marker = Object.assign({}, data[index].marker,
        { size: sizes(liq.v, view.marker_scale), opacity: view.marker_opacity });
    }
    const close = Array.from(candles.close);
    for (const index of [TRACE.priceCasing, TRACE.price]) {
      Object.assign(data[index], { x: candles.time, y: close });
    }
    Object.assign(data[TRACE.barLong], { x: map.longBar, y: map.price });
    Object.assign(data[TRACE.barShort], { x: map.shortBar, y: map.price });
    Object.assign(data[TRACE.cumLong], { x: map.cumLong.x, y: map.cumLong.y });
    Object.assign(data[TRACE.cumShort], { x: map.cumShort.x, y: map.cumShort.y });
    Object.assign(data[TRACE.observedLong], { x: observed.start, width: observed.width,
      y: observed.long.map((v) => -v), customdata: observed.long });
    Object.assign(data[TRACE.observedShort], { x: observed.start, width: observed.width,
      y: observed.short, customdata: observed.short });
    Object.assign(data[TRACE.coverage], { x: coverage.minute.map(atMinute),
      y: coverage.total,
      customdata: coverage.long.map((v, i) => [v, coverage.short[i]]) });

    const layout = JSON.parse(JSON.stringify(FIGURE.layout));
    layout.xaxis.range = [x0, x1];
    const band = priceBand(candles, x0, x1);
    if (band) layout.yaxis.range = band;
    for (const axis of [layout.coloraxis, layout.coloraxis2]) {
      Object.assign(axis, { cmin, cmax });
      if (log) {
        const ticks = logTicks(Math.pow(10, cmin), top);
        usdTicks(axis.colorbar, ticks, ticks.map(Math.log10));
      } else {
        usdTicks(axis.colorbar, linearTicks(top));
      }
    }
    mapAxis(layout.xaxis2, map.longBar.concat(map.shortBar));
    mapAxis(layout.xaxis3, map.cumLong.x.concat(map.cumShort.x));
    observedAxis(layout.yaxis3, observed, x0, x1);
    layout.annotations = (layout.annotations || []).concat([{
      text: grid.series.observedLabel, xref: "x domain", yref: "y3 domain", x: 0.005, y: 1,
      xanchor: "left", yanchor: "bottom", showarrow: false, font: { size: 11 } }]);
    const mapTime = col === null ? null : grid.t0 + (col + 1) * grid.step;
    const mapPrice = mapTime === null ? null : closeAt(candles, mapTime - 1);
    layout.shapes = [];
    if (mapTime !== null) {
      layout.shapes.push({ type: "line", xref: "x", yref: "paper", x0: mapTime, x1: mapTime,
                           y0: 0, y1: 1, line: { color: "#8b95a7", width: 1, dash: "dot" } });
    }
    if (mapPrice !== null) {
      layout.shapes.push({ type: "line", xref: "x2 domain", yref: "y", x0: 0, x1: 1,
                           y0: mapPrice, y1: mapPrice, line: { color: PRICE_LINE, width: 1.2 } });
    }
    layout.xaxis2.title = { text: mapTime === null ? "liquidation map: no snapshot in view"
      : "USD per bin at " + new Date(mapTime).toISOString().slice(0, 16).replace("T", " ") + " UTC" };
    document.getElementById("liqheat-resolution").textContent =
      "columns: " + grid.label;
    return Plotly.react(plot, data, layout, { responsive: true, displaylogo: false }).then(() => {
      plot.dataset.range = range;
      plot.dataset.ready = "1";
    });
  }

  function activate(groupSelector, attribute, value) {
    for (const button of document.querySelectorAll(groupSelector + " button")) {
      button.classList.toggle("active", button.getAttribute(attribute) === value);
    }
  }

  for (const button of document.querySelectorAll("#liqheat-ranges button")) {
    button.addEventListener("click", () => {
      state.range = button.dataset.range;
      activate("#liqheat-ranges", "data-range", state.range);
      render();
    });
  }
  for (const button of document.querySelectorAll("#liqheat-scales button")) {
    button.addEventListener("click", () => {
      state.scale = button.dataset.scale;
      activate("#liqheat-scales", "data-scale", state.scale);
      render();
    });
  }
  document.getElementById("liqheat-tier").addEventListener("change", (event) => {
    state.tier = Number(event.target.value);
    render();
  });

  // Marks for scripts/bench_page.py: the first view's cells decoded, then drawn.
  decodedGrid(gridName(RANGES[state.range].span)).then(() => performance.mark("liqheat-decoded"));
  render().then(() => {
    performance.mark("liqheat-drawn");
    // The other ranges' grids, decoded while nobody waits for them.
    setTimeout(() => Object.keys(DATA.grids).forEach(decodedGrid), 0);
    plot.on("plotly_click", (event) => {
      const point = event.points && event.points[0];
      if (!point || point.data.xaxis !== undefined && point.data.xaxis !== "x") return;
      state.mapTime = Date.parse(String(point.x).replace(" ", "T") + "Z");
      render();
    });
  });
})();
