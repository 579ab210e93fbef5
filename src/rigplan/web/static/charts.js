// Small hand-written SVG charts: stacked bars, lines and a scatter. No dependencies.

const NS = "http://www.w3.org/2000/svg";
export const GIB = 2 ** 30;

export function el(tag, attrs = {}, children = []) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v !== null && v !== undefined) node.setAttribute(k, String(v));
  }
  for (const c of [].concat(children)) {
    node.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return node;
}

function titled(node, text) {
  node.append(el("title", {}, text));
  return node;
}

// Round numbers for an axis from 0 to max: about `count` ticks at 1, 2 or 5 × 10^k.
export function niceTicks(max, count = 5) {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const ticks = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) ticks.push(+v.toPrecision(12));
  if (ticks[ticks.length - 1] < max) ticks.push(+(ticks[ticks.length - 1] + step).toPrecision(12));
  return ticks;
}

export function fmt(value, digits = 3) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return String(+value.toPrecision(digits));
}

function frame(width, height, label) {
  return el("svg", {
    viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": label,
    class: "chart-svg", preserveAspectRatio: "xMidYMid meet",
  });
}

function axes(svg, box, xTicks, yTicks, xScale, yScale, xLabel, yLabel, xFormat = fmt, yFormat = fmt) {
  const g = el("g", { class: "axes" });
  for (const t of yTicks) {
    const y = yScale(t);
    g.append(el("line", { x1: box.left, x2: box.right, y1: y, y2: y, class: "gridline" }));
    g.append(el("text", { x: box.left - 6, y: y + 4, "text-anchor": "end", class: "tick" }, yFormat(t)));
  }
  for (const t of xTicks) {
    const x = xScale(t);
    g.append(el("text", { x, y: box.bottom + 16, "text-anchor": "middle", class: "tick" }, xFormat(t)));
  }
  g.append(el("line", { x1: box.left, x2: box.right, y1: box.bottom, y2: box.bottom, class: "axis" }));
  g.append(el("line", { x1: box.left, x2: box.left, y1: box.top, y2: box.bottom, class: "axis" }));
  g.append(el("text", { x: (box.left + box.right) / 2, y: box.bottom + 34, "text-anchor": "middle", class: "axis-label" }, xLabel));
  g.append(el("text", {
    x: 14, y: (box.top + box.bottom) / 2, "text-anchor": "middle", class: "axis-label",
    transform: `rotate(-90 14 ${(box.top + box.bottom) / 2})`,
  }, yLabel));
  svg.append(g);
}

function legend(svg, items, x, y) {
  const g = el("g", { class: "legend" });
  let dx = x;
  for (const { label, cls } of items) {
    g.append(el("rect", { x: dx, y: y - 9, width: 10, height: 10, class: cls }));
    const text = el("text", { x: dx + 14, y, class: "legend-text" }, label);
    g.append(text);
    dx += 24 + label.length * 6.6; // ~6.6 px per character at the 11 px legend font
  }
  svg.append(g);
}

function message(svg, width, height, text) {
  svg.append(el("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "empty" }, text));
}

// [bytes of one GPU's entry, label, class]: inference estimates and training estimates.
export const INFERENCE_SEGMENTS = [
  [(g) => g.weights_bytes, "weights", "seg seg-weights"],
  [(g) => g.kv_cache_bytes, "KV cache", "seg seg-kv"],
  [(g) => g.activations_bytes, "activations", "seg seg-act"],
  [(g) => g.overhead_bytes, "overhead", "seg seg-overhead"],
];
export const TRAINING_SEGMENTS = [
  [(g) => g.weights_bytes, "weights", "seg seg-weights"],
  [(g) => g.gradients_bytes, "gradients", "seg seg-grads"],
  [(g) => g.optimizer_states_bytes, "optimizer", "seg seg-optim"],
  [(g) => g.gathered_params_bytes, "gathered", "seg seg-gathered"],
  [(g) => g.activations_bytes + g.logits_bytes, "activations", "seg seg-act"],
  [(g) => g.overhead_bytes, "overhead", "seg seg-overhead"],
];
export const MAX_BARS = 16;

// Stacked memory per GPU (weights, KV, activations, overhead) against each GPU's capacity.
export function memoryChart(perGpu, { width = 560, height = 300, segments = INFERENCE_SEGMENTS } = {}) {
  const svg = frame(width, height, "memory per GPU");
  const gpus = perGpu.slice(0, MAX_BARS);
  const box = { left: 56, right: width - 12, top: 30, bottom: height - 48 };
  if (!gpus.length) {
    message(svg, width, height, "no GPUs");
    return svg;
  }
  const yMax = Math.max(...gpus.map((g) => Math.max(g.capacity_bytes, g.total_bytes))) / GIB;
  const yTicks = niceTicks(yMax);
  const top = yTicks[yTicks.length - 1];
  const y = (v) => box.bottom - (v / top) * (box.bottom - box.top);
  const band = (box.right - box.left) / gpus.length;
  const barW = Math.min(64, band * 0.6);
  const x = (i) => box.left + band * (i + 0.5);
  axes(svg, box, [], yTicks, x, y, "", "GiB");
  gpus.forEach((g, i) => {
    const bar = el("g", { class: g.fits ? "bar" : "bar overflow", "data-gpu": g.gpu });
    let base = 0;
    for (const [bytes, label, cls] of segments) {
      const v = (bytes(g) || 0) / GIB;
      if (v <= 0) continue;
      const rect = el("rect", {
        x: x(i) - barW / 2, y: y(base + v), width: barW, height: Math.max(0.5, y(base) - y(base + v)), class: cls,
      });
      bar.append(titled(rect, `${label}: ${v.toFixed(2)} GiB`));
      base += v;
    }
    const cap = g.capacity_bytes / GIB;
    bar.append(titled(el("line", {
      x1: x(i) - band * 0.45, x2: x(i) + band * 0.45, y1: y(cap), y2: y(cap), class: "capacity",
    }), `capacity ${cap.toFixed(1)} GiB`));
    if (g.usable_bytes != null && g.usable_bytes < g.capacity_bytes) {
      const use = g.usable_bytes / GIB;
      bar.append(titled(el("line", {
        x1: x(i) - band * 0.45, x2: x(i) + band * 0.45, y1: y(use), y2: y(use), class: "usable",
      }), `usable ${use.toFixed(1)} GiB (engine reservation)`));
    }
    bar.append(el("text", { x: x(i), y: box.bottom + 14, "text-anchor": "middle", class: "tick" },
      gpus.length > 8 ? String(i) : `${i}: ${g.gpu}`));
    bar.append(el("text", { x: x(i), y: y(Math.max(base, cap)) - 4, "text-anchor": "middle", class: "value" },
      `${base.toFixed(1)}`));
    svg.append(bar);
  });
  legend(svg, [...segments.map(([, label, cls]) => ({ label, cls })), { label: "capacity", cls: "swatch-capacity" }], box.left, 14);
  if (perGpu.length > MAX_BARS) {
    svg.append(el("text", { x: box.right, y: box.bottom + 30, "text-anchor": "end", class: "tick" },
      `first ${MAX_BARS} of ${perGpu.length} GPUs`));
  }
  return svg;
}

const PALETTE = 6; // colour classes line-0 … line-5 in style.css

// One line per GPU type: speed at 1…N GPUs; counts that do not fit are marked on the x axis.
// `xKey`, `xLabel` and `title` let the same chart draw a sweep (context or batch on x).
export function scalingChart(lines, {
  width = 560, height = 300, metric = "decode_tokens_per_s", yLabel = "tok/s",
  xKey = "gpus", xLabel = "number of GPUs", title = "speed vs number of GPUs",
} = {}) {
  const svg = frame(width, height, title);
  const box = { left: 56, right: width - 12, top: 30, bottom: height - 48 };
  const maxN = Math.max(1, ...lines.flatMap((l) => l.points.map((p) => p[xKey])));
  const values = lines.flatMap((l) => l.points.filter((p) => p.fits && p[metric] != null).map((p) => p[metric]));
  const yTicks = niceTicks(values.length ? Math.max(...values) : 1);
  const top = yTicks[yTicks.length - 1];
  // 1…8 GPUs on a linear axis; larger counts (nodes × GPUs) at evenly spaced positions.
  const counts = [...new Set(lines.flatMap((l) => l.points.map((p) => p[xKey])))].sort((a, b) => a - b);
  const xTicks = maxN <= 8 ? Array.from({ length: maxN }, (_, i) => i + 1) : counts;
  const slot = (n) => (maxN <= 8 ? n : counts.indexOf(n) + 1);
  const x = (n) => box.left + ((slot(n) - 0.5) / xTicks.length) * (box.right - box.left);
  const y = (v) => box.bottom - (v / top) * (box.bottom - box.top);
  axes(svg, box, xTicks, yTicks, x, y, xLabel, yLabel);
  lines.forEach((line, k) => {
    const cls = `line-${k % PALETTE}`;
    const g = el("g", { class: `series ${cls}`, "data-gpu": line.gpu });
    const fit = line.points.filter((p) => p.fits && p[metric] != null);
    if (fit.length > 1) {
      g.append(el("polyline", { points: fit.map((p) => `${x(p[xKey])},${y(p[metric])}`).join(" "), class: "line" }));
    }
    for (const p of fit) {
      g.append(titled(el("circle", { cx: x(p[xKey]), cy: y(p[metric]), r: 4, class: "dot" }),
        `${p.rig}: ${fmt(p[metric])} ${yLabel}`));
    }
    for (const p of line.points.filter((q) => !q.fits)) {
      const cx = x(p[xKey]) + (k - (lines.length - 1) / 2) * 5;
      g.append(titled(el("path", { d: `M${cx - 3},${box.bottom - 3}l6,6m0,-6l-6,6`, class: "nofit" }),
        `${p.rig}: ${p.error || "does not fit"}`));
    }
    svg.append(g);
  });
  legend(svg, lines.map((l, k) => ({ label: l.gpu, cls: `swatch line-${k % PALETTE}` })), box.left, 14);
  if (!values.length) {
    message(svg, width, height - 20, lines.some((l) => l.points.some((p) => p.fits))
      ? "no speed figures (speed model not in this install)" : `does not fit at any of these points (${xLabel})`);
  }
  return svg;
}

// Cost (x) against speed (y), one point per ranked rig; the selected one is highlighted.
export function scatterChart(points, { width = 560, height = 300, selected = 0, onPick = null, yLabel = "tok/s" } = {}) {
  const svg = frame(width, height, "cost vs speed");
  const box = { left: 64, right: width - 16, top: 30, bottom: height - 48 };
  const usable = points.filter((p) => p.cost != null && p.speed != null);
  const xTicks = niceTicks(usable.length ? Math.max(...usable.map((p) => p.cost)) : 1, 5);
  const yTicks = niceTicks(usable.length ? Math.max(...usable.map((p) => p.speed)) : 1);
  const xTop = xTicks[xTicks.length - 1];
  const yTop = yTicks[yTicks.length - 1];
  const x = (v) => box.left + (v / xTop) * (box.right - box.left);
  const y = (v) => box.bottom - (v / yTop) * (box.bottom - box.top);
  const usd = (v) => (v >= 1000 ? `$${fmt(v / 1000)}k` : `$${fmt(v)}`);
  axes(svg, box, xTicks, yTicks, x, y, "cost (USD)", yLabel, usd);
  for (const p of usable) {
    const g = el("g", { class: p.index === selected ? "point selected" : "point", "data-index": p.index });
    g.append(titled(el("circle", { cx: x(p.cost), cy: y(p.speed), r: p.index === selected ? 7 : 5, class: p.fits ? "dot" : "dot nofit" }),
      `#${p.index + 1} ${p.label}: ${usd(p.cost)}, ${fmt(p.speed)} ${yLabel}`));
    g.append(el("text", { x: x(p.cost) + 8, y: y(p.speed) - 6, class: "point-label" }, String(p.index + 1)));
    if (onPick) g.addEventListener("click", () => onPick(p.index));
    svg.append(g);
  }
  if (!usable.length) {
    message(svg, width, height - 20, points.some((p) => p.speed != null)
      ? "no prices for these rigs" : "no speed figures (speed model not in this install)");
  }
  return svg;
}
