// The rigplan page: a form whose every field lives in the URL, ranked rigs, charts, power,
// launch command and the GPU table.  Talks only to the JSON API under /api.

import { api } from "./api.js";
import { GIB, TRAINING_SEGMENTS, fmt, memoryChart, scalingChart, scatterChart } from "./charts.js";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

// Form fields kept in the URL, with the value that is left out of it.
const FIELDS = {
  model: "", task: "inference", engine: "", quant: "", context: "", users: "", method: "qlora",
  budget: "", max_watts: "", circuit: "", max_gpus: "", gpu_class: "", platform: "",
  min_tokens_per_s: "", have: "", prices: "", objective: "cheapest", nvlink: "", rigs: "", kwh: "",
  tokens: "", deadline: "",
};
const DEFAULT_RIGS = "rtx-4090, 2x rtx-3090, rtx-5090, 2x rtx-4090, rtx-6000-ada, 2x rtx-6000-ada, a100-sxm-80gb, h100-sxm, 2x h100-sxm, m2-ultra-192gb";
const SCALING_TYPES = 4; // GPU types drawn in the speed-vs-count chart
const DEFAULT_CONTEXT = 4096; // the planner's default too
const PLAN_TOP = 10;

const state = {
  meta: null, models: [], gpus: [], rows: [], selected: 0, gpuSort: "-memory_gb", gpuClass: "",
};

// ---------------------------------------------------------------- URL state

function readForm() {
  const form = $("#form");
  const out = {};
  for (const name of Object.keys(FIELDS)) {
    const input = form.elements[name];
    if (!input) continue;
    out[name] = input.type === "checkbox" ? (input.checked ? "1" : "") : input.value.trim();
  }
  return out;
}

function writeForm(values) {
  const form = $("#form");
  for (const [name, value] of Object.entries(values)) {
    const input = form.elements[name];
    if (!input) continue;
    if (input.type === "checkbox") input.checked = value === "1" || value === "true";
    else input.value = value;
  }
}

// A submitted question gets its own history entry (Back returns to the previous plan); a row
// selection or a sort only updates the current one.
function pushUrl(newEntry = false) {
  const values = readForm();
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== "" && v !== FIELDS[k]) qs.set(k, v);
  if (state.selected) qs.set("sel", String(state.selected));
  if (state.gpuSort !== "-memory_gb") qs.set("gpusort", state.gpuSort);
  if (state.gpuClass) qs.set("gpuclass", state.gpuClass);
  const url = qs.toString() ? `?${qs}` : location.pathname;
  const target = url === location.pathname ? location.pathname : `${location.pathname}${url}`;
  if (newEntry && target !== `${location.pathname}${location.search}`) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

function readUrl() {
  const qs = new URLSearchParams(location.search);
  const values = {};
  for (const name of Object.keys(FIELDS)) values[name] = qs.get(name) ?? FIELDS[name];
  state.selected = Math.max(0, parseInt(qs.get("sel") || "0", 10) || 0);
  state.gpuSort = qs.get("gpusort") || state.gpuSort;
  state.gpuClass = qs.get("gpuclass") || "";
  return values;
}

// ---------------------------------------------------------------- set-up

function option(value, label, parent) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  parent.append(o);
  return o;
}

function fillChoices(quants) {
  const models = $("#model-list");
  for (const m of state.models) {
    option(m.id, `${m.name} · ${(m.published_param_count / 1e9).toFixed(1)}B`, models);
  }
  const engine = $("#engine");
  option("", state.meta.features.plan ? "any (planner picks)" : "llama.cpp (default)", engine);
  for (const e of state.meta.engines) option(e, e, engine);
  const quant = $("#quant");
  option("", "engine default", quant);
  for (const w of ["4bit", "8bit", "16bit"]) option(w, w, quant);
  const groups = {};
  for (const q of quants) {
    if (!groups[q.family]) {
      groups[q.family] = document.createElement("optgroup");
      groups[q.family].label = q.family;
      quant.append(groups[q.family]);
    }
    // The server's wording, the same as `rigplan quants` (a GGUF mix: its main type's bits and
    // the average over a typical model; the memory chart gives the chosen model's own).
    option(q.id, `${q.id} (${q.bits_text})`, groups[q.family]);
  }
  if (!state.meta.features.training_plan) {
    const t = $("#task option[value=training]");
    t.disabled = true;
    t.textContent += " — not in this install";
  }
}

function applyMode() {
  const plan = state.meta.features.plan;
  const training = $("#task").value === "training";
  document.body.classList.toggle("has-plan", plan);
  document.body.classList.toggle("task-training", training);
  if (!plan || $("#rigs-input").value.trim()) $("#compare-box").open = true;
  $("#go").textContent = mode(readForm()) === "compare" ? "Compare" : "Plan";
}

function describeModel() {
  const id = $("#model").value.trim().toLowerCase();
  const m = state.models.find((x) => x.id === id || (x.aliases || []).includes(id));
  const info = $("#model-info");
  if (!m) {
    info.textContent = id.startsWith("upload-") ? "your uploaded model file"
      : id ? "not a catalogue id: pick one from the list" : "";
    return;
  }
  const attn = m.kv_lora_rank > 0 ? "MLA" : m.num_kv_heads < m.num_heads ? `GQA ${m.num_heads}/${m.num_kv_heads}` : "MHA";
  const kind = m.moe_num_experts > 0 ? `MoE ${m.moe_active_experts}/${m.moe_num_experts} experts` : "dense";
  info.textContent = `${m.name}: ${(m.published_param_count / 1e9).toFixed(1)}B parameters, ${kind}, ${attn}, `
    + `${m.num_layers} layers, up to ${m.max_context.toLocaleString("en-US")} tokens of context.`;
}

// ---------------------------------------------------------------- requests

function workload(v) {
  return {
    model: v.model,
    quant: v.quant,
    context: v.context || DEFAULT_CONTEXT,
    prompt_tokens: 512,
    output_tokens: 128,
  };
}

function gpuPrice(id) {
  const g = state.gpus.find((x) => x.id === id);
  return g && g.price ? g.price.usd : null;
}

function gpusCost(perGpu) {
  let total = 0;
  for (const g of perGpu) {
    const p = gpuPrice(g.gpu);
    if (p == null) return null;
    total += p;
  }
  return total;
}

function splitList(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

function mode(v) {
  if (v.task === "training" && state.meta.features.training_plan) return "train";
  if (v.rigs) return "compare";
  return state.meta.features.plan ? "plan" : "compare";
}

function layoutText(o) {
  const par = [o.tensor_parallel > 1 && `TP ${o.tensor_parallel}`, o.pipeline_parallel > 1 && `PP ${o.pipeline_parallel}`,
    `DP ${o.data_parallel}`].filter(Boolean).join(" × ");
  return `ZeRO-${o.zero_stage} · ${par} · micro-batch ${o.micro_batch}${o.offload ? ` · offload ${o.offload}` : ""}`;
}

function duration(seconds) {
  if (seconds == null) return "—";
  if (seconds < 3600) return `${fmt(seconds / 60, 2)} min`;
  if (seconds < 2 * 86400) return `${fmt(seconds / 3600, 3)} h`;
  return `${fmt(seconds / 86400, 3)} days`;
}

// The planner's constraint keys in the page's words.
const EXCLUDED_WORDS = {
  fits: "did not fit in memory", budget: "over the budget", watts: "over the power limit",
  circuit: "too much for the wall circuit", max_gpus: "too many GPUs", gpu_class: "another GPU class",
  platform: "another platform class", nvlink: "no NVLink", min_tokens_per_s: "too slow",
  users: "too few users served", have: "not the GPUs you own", price_unknown: "no known price",
  engine: "the engine cannot run it", slots: "not enough slots", lanes: "not enough PCIe lanes",
};
// CLI flags in the planner's notes, as the page's fields are called.
const FLAG_WORDS = [
  [/--price GPU=USD/g, "the “Your prices” field"], [/--price/g, "“Your prices”"], [/--budget/g, "the budget"],
  [/--max-watts/g, "the power limit"], [/--max-gpus/g, "“Max GPUs”"], [/--context/g, "the context"],
  [/--users/g, "“Users at once”"], [/--have/g, "“GPUs you own”"], [/--engine/g, "the engine"],
  [/ \(`rigplan [a-z]+` lists all\)/g, ""], [/--quant/g, "the quant"], [/--class/g, "the GPU class"], [/--nvlink/g, "NVLink"], [/--force/g, "a forced run"],
];

export function plainWords(text) {
  let out = String(text);
  for (const [flag, words] of FLAG_WORDS) out = out.replace(flag, words);
  return out;
}

function excludedText(key, n) {
  const words = EXCLUDED_WORDS[key] || key.replace(/_/g, " ");
  return `${n.toLocaleString("en-US")} ${words}`;
}

function planNote(data) {
  const parts = [];
  if (data.notes && data.notes.length) parts.push(plainWords(data.notes.join(" ")));
  if (!data.recommendations.length) {
    const ex = Object.entries(data.excluded || {}).map(([k, n]) => excludedText(k, n));
    if (ex.length) parts.push(`Rigs left out: ${ex.join(", ")}.`);
    const miss = data.nearest_miss;
    if (miss) parts.push(plainWords(`Nearest miss: ${miss.rig} (${miss.quant}, ${miss.engine}, ${usd(miss.cost_usd)}): ${miss.failed.join("; ")}.`));
  }
  return parts.join(" ") || null;
}

async function fetchRows(v) {
  const users = parseInt(v.users || "1", 10) || 1;
  if (mode(v) === "train") {
    const data = await api("/api/train-plan", {
      model: v.model, task: v.method, tokens: v.tokens, deadline_hours: v.deadline, budget: v.budget,
      max_gpus: v.max_gpus, gpu_class: v.gpu_class, seq_len: v.context || 2048,
      objective: v.objective === "fastest" ? "fastest" : "cheapest", limit: PLAN_TOP,
    });
    state.trainPlan = data;
    const rows = data.options.map((o) => ({
      kind: "training", rig: o.rig, quant: data.task, engine: layoutText(o), opt: o, cost: o.buy_usd, costNote: "GPUs only",
      why: o.why, avoid: null, estimate: null, train: null, power: null, error: null,
    }));
    const note = [`${data.tokens.toLocaleString("en-US")} tokens, sequences of ${data.seq_len.toLocaleString("en-US")}, `
      + `global batch ${data.global_batch}.`, ...(data.notes || [])].join(" ");
    return { rows, note };
  }
  if (mode(v) === "plan") {
    const data = await api("/api/plan", {
      model: v.model, quant: v.quant || "any", context: v.context, users: v.users, engine: v.engine,
      budget: v.budget, max_watts: v.max_watts, circuit: v.circuit, max_gpus: v.max_gpus, gpu_class: v.gpu_class,
      platform: v.platform, min_tokens_per_s: v.min_tokens_per_s, have: v.have ? splitList(v.have) : null,
      price: v.prices ? splitList(v.prices) : null, objective: v.objective, nvlink: v.nvlink ? "true" : null,
      kwh_price: v.kwh, top: PLAN_TOP,
    });
    const planRow = (r, also) => ({
      also, rank: r.rank, standout: r.standout,
      rig: r.rig, quant: r.quant, engine: r.engine, cost: r.cost_usd, costNote: r.cost_complete ? "whole rig" : "whole rig, some prices unknown",
      costItems: r.cost, usersServed: r.users_served, estimate: r.estimate, power: r.power, platform: r.platform,
      speed: [r.speed_tokens_per_s, r.speed_tokens_per_s_range], speedBasis: r.speed_basis, why: r.why, avoid: r.avoid_if, next: r.next_step, energyHour: r.energy_usd_per_hour,
      energyMillion: r.energy_usd_per_million_tokens, error: null,
    });
    return {
      rows: [...data.recommendations.map((r) => planRow(r, false)), ...(data.also_worth_a_look || []).map((r) => planRow(r, true))],
      note: planNote(data),
    };
  }
  const rigs = splitList(v.rigs || DEFAULT_RIGS).slice(0, state.meta.limits.max_list_items || 8);
  const data = await api("/api/compare", {
    model: v.model, quant: v.quant, engine: v.engine, context: v.context || DEFAULT_CONTEXT, batch: users, rig: rigs,
  });
  const rows = data.results.map((d) => d.error
    ? { rig: d.rig, error: d.detail, estimate: null }
    : {
      rig: d.rig, quant: d.quant, engine: d.engine, cost: gpusCost(d.memory.per_gpu), costNote: "GPUs only",
      estimate: d, power: d.power, platform: null, why: null, avoid: null, error: null,
    });
  const speed = (r) => (r.estimate && r.estimate.speed.decode_tokens_per_s) || -1;
  rows.sort((a, b) => (!!b.estimate - !!a.estimate) || ((b.estimate?.fits ?? false) - (a.estimate?.fits ?? false))
    || (speed(b) - speed(a)) || ((a.cost ?? Infinity) - (b.cost ?? Infinity)));
  return { rows, note: null };
}

// ---------------------------------------------------------------- rendering

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
  return td;
}

function usd(v) {
  return v == null ? "price unknown" : `$${Math.round(v).toLocaleString("en-US")}`;
}

function gib(bytes) {
  return bytes == null ? "—" : `${(bytes / GIB).toFixed(1)} GiB`;
}

function rateText(value, range) {
  if (value == null) return "—";
  return range ? `${fmt(value)} (${fmt(range[0])}–${fmt(range[1])})` : fmt(value);
}

// [tok/s, range] a row shows and ranks: a plan's own speed (speed_tokens_per_s: decode for one
// user, per user with prompts included for several), else the estimate's decode speed.
function rowSpeedRange(r) {
  if (r.speed) return r.speed;
  const s = r.estimate && r.estimate.speed;
  return s ? [s.decode_tokens_per_s, s.decode_tokens_per_s_range] : [null, null];
}

const SPEED_HEADER = "decode tok/s";
// The speed column's header by a plan's speed_basis (compared rigs show decode).
const SPEED_HEADERS = { decode: SPEED_HEADER, "per-user, prompts included": "tok/s per user" };

function speedHeader() {
  const basis = (state.rows.find((r) => r.speedBasis) || {}).speedBasis;
  return SPEED_HEADERS[basis] || SPEED_HEADER;
}

function fullest(perGpu) {
  return perGpu.reduce((a, g) => (g.total_bytes / g.usable_bytes > a.total_bytes / a.usable_bytes ? g : a));
}

const INFERENCE_COLUMNS = [
  ["fits", (r, e) => [e.fits ? "yes" : "no", e.fits ? "good" : "bad"]],
  ["quant", (r) => [r.quant]],
  ["engine", (r) => [r.engine]],
  ["fullest GPU", (r, e) => { const t = fullest(e.memory.per_gpu); return [`${gib(t.total_bytes)} / ${gib(t.usable_bytes)}`, "num"]; }],
  [SPEED_HEADER, (r) => [rateText(...rowSpeedRange(r)), "num"]],
  ["first token", (r, e) => [e.speed.ttft_s == null ? "—" : `${fmt(e.speed.ttft_s)} s`, "num"]],
  ["users", (r) => [r.usersServed != null ? String(r.usersServed) : "—", "num"]],
  ["cost", (r) => [`${usd(r.cost)}${r.cost != null ? ` (${r.costNote})` : ""}`, "num"]],
  ["PSU", (r) => [r.power && r.power.psu_watts ? `${r.power.psu_watts} W` : "—", "num"]],
];
const TRAINING_COLUMNS = [
  ["fits", () => ["yes", "good"]],
  ["method", (r) => [r.quant]],
  ["layout", (r) => [r.engine]],
  ["peak GPU", (r) => [`${gib(r.opt.peak_gpu_bytes)} / ${gib(r.opt.capacity_bytes)}`, "num"]],
  ["tokens/s", (r) => [fmt(r.opt.tokens_per_s), "num"]],
  ["MFU", (r) => [r.opt.mfu == null ? "—" : `${Math.round(r.opt.mfu * 100)}%`, "num"]],
  ["time to train", (r) => [duration(r.opt.time_to_train_s), "num"]],
  ["cost", (r) => [`${usd(r.cost)}${r.cost != null ? ` (${r.costNote})` : ""}`, "num"]],
  ["energy", (r) => [r.opt.energy_kwh == null ? "—" : `${fmt(r.opt.energy_kwh)} kWh`, "num"]],
];

// The ranked rows, then (plans only) the standouts the top N leaves out, with their true place.
function renderRigs() {
  const training = state.rows.length && state.rows[0].kind === "training";
  const speed = speedHeader();
  const columns = training ? TRAINING_COLUMNS : INFERENCE_COLUMNS.map((c) => (c[0] === SPEED_HEADER ? [speed, c[1]] : c));
  const indexed = state.rows.map((r, i) => [r, i]);
  renderRigTable($("#rigs"), columns, indexed.filter(([r]) => !r.also));
  const also = indexed.filter(([r]) => r.also);
  $("#also").hidden = !also.length;
  renderRigTable($("#also-rigs"), columns, also);
}

// The rig, tagged with the objectives under which it is the best qualifying one.
function rigCell(tr, r) {
  const td = cell(tr, r.rig, "rig");
  if (r.standout) {
    const tag = document.createElement("small");
    tag.className = "best-by";
    tag.textContent = ` (${r.standout})`;
    td.append(tag);
  }
}

function renderRigTable(table, columns, entries) {
  table.replaceChildren();
  if (!entries.length) return;
  const head = table.createTHead().insertRow();
  for (const h of ["#", "rig", ...columns.map((c) => c[0])]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.append(th);
  }
  const body = table.createTBody();
  for (const [r, i] of entries) {
    const tr = body.insertRow();
    tr.dataset.index = String(i);
    tr.dataset.rig = r.rig;
    if (i === state.selected) tr.classList.add("selected");
    const place = r.rank || i + 1;
    cell(tr, String(place));
    rigCell(tr, r);
    if (r.error) {
      cell(tr, "error", "bad");
      const td = cell(tr, r.error, "error-text");
      td.colSpan = columns.length - 1;
      continue;
    }
    for (const [, show] of columns) cell(tr, ...show(r, r.estimate));
    tr.addEventListener("click", () => select(i));
    makeSelectable(tr, () => select(i), `Show rig ${place}: ${r.rig}`);
  }
}

// A table row that Tab reaches and Enter or Space selects, announced as a button.
function makeSelectable(tr, act, label) {
  tr.tabIndex = 0;
  tr.setAttribute("aria-label", label);
  tr.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      act();
    }
  });
}

// The estimate's provenance, as `rigplan estimate --explain` prints it: kind, source, formula.
function renderExplain(row) {
  const list = $("#explain-list");
  list.replaceChildren();
  const prov = row && row.estimate && row.estimate.provenance;
  $("#explain").hidden = !prov;
  if (!prov) return;
  for (const [field, p] of Object.entries(prov)) {
    const dt = document.createElement("dt");
    dt.textContent = field.replaceAll("_", " ");
    const dd = document.createElement("dd");
    dd.textContent = `${p.kind}: ${p.source}${p.formula ? ` = ${p.formula}` : ""}`;
    list.append(dt, dd);
  }
}

function renderWhy(row) {
  renderExplain(row);
  const box = $("#why");
  box.replaceChildren();
  if (!row || row.error) return;
  const add = (label, text) => {
    if (!text || (Array.isArray(text) && !text.length)) return;
    const p = document.createElement("p");
    const b = document.createElement("strong");
    b.textContent = `${label}: `;
    p.append(b, [].concat(text).join(" "));
    box.append(p);
  };
  add("Why", row.why);
  add("Avoid if", row.avoid);
  add("Next step up", row.next);
  if (row.costItems && row.costItems.length) {
    add("Cost", row.costItems.map((c) => `${c.item} ${usd(c.usd)} (${c.kind}${c.as_of ? `, ${c.as_of}` : ""})`).join("; "));
  }
}

function put(figure, svg, sub) {
  // Drawn at its viewBox width or wider, never shrunk: 11 px text stays 11 px on a phone.
  const box = svg.viewBox && svg.viewBox.baseVal;
  if (box && box.width) svg.style.minWidth = `${box.width}px`;
  $(`${figure} .chart`).replaceChildren(svg);
  $(`${figure} .sub`).textContent = sub || "";
}

function renderMemory(row) {
  if (!row || row.error) {
    put("#memory-chart", memoryChart([]), "");
    return;
  }
  if (row.kind === "training") {
    if (!row.train) {
      put("#memory-chart", memoryChart([]), "— loading…");
      return;
    }
    const t = row.train;
    const host = t.memory.host_bytes ? ` · ${gib(t.memory.host_bytes)} in host RAM` : "";
    put("#memory-chart", memoryChart(t.memory.per_gpu, { segments: TRAINING_SEGMENTS }),
      `— ${row.rig}, ${t.method}, ${t.precision}, ZeRO-${t.zero_stage}, sequences of ${t.seq_len.toLocaleString("en-US")}${host}`);
    return;
  }
  const m = row.estimate.memory;
  const host = m.host_bytes ? ` · ${gib(m.host_bytes)} in host RAM` : "";
  const model = state.models.find((x) => x.id === row.estimate.model);
  const bits = model && model.published_param_count ? `, ${fmt((m.weights_bytes * 8) / model.published_param_count)} bits per weight in all` : "";
  put("#memory-chart", memoryChart(m.per_gpu), `— ${row.rig}, ${row.quant}${bits}, context ${row.estimate.context.toLocaleString("en-US")} × ${row.estimate.batch}${host}`);
}

function rowSpeed(r) {
  if (r.kind === "training") return r.opt.tokens_per_s;
  return rowSpeedRange(r)[0];
}

function renderScatter() {
  const training = state.rows.length && state.rows[0].kind === "training";
  const points = state.rows.map((r, i) => ({
    index: i, label: r.rig, cost: r.cost, fits: training || (r.estimate ? r.estimate.fits : false), speed: rowSpeed(r),
  })).filter((p) => !state.rows[p.index].also && (p.fits || p.speed != null)); // ranked rigs only, as numbered
  const m = mode(readForm());
  put("#scatter-chart", scatterChart(points, { selected: state.selected, onPick: select, yLabel: training ? "training tok/s" : speedHeader() }),
    m === "plan" ? "— whole rig" : "— GPU prices only");
}

async function renderScaling(v) {
  if (state.rows.length && state.rows[0].kind === "training") {
    // Every option is a rig with its fastest layout: group them by GPU type.
    const byGpu = new Map();
    for (const o of state.trainPlan.options) {
      if (!byGpu.has(o.gpu)) byGpu.set(o.gpu, []);
      byGpu.get(o.gpu).push({ gpus: o.gpu_count, rig: o.rig, fits: true, tokens_per_s: o.tokens_per_s });
    }
    const lines = [...byGpu].slice(0, SCALING_TYPES).map(([gpu, points]) => ({ gpu, points: points.sort((a, b) => a.gpus - b.gpus) }));
    put("#scaling-chart", scalingChart(lines, { metric: "tokens_per_s", yLabel: "training tok/s" }), `— ${state.trainPlan.task}, fastest layout per rig`);
    return;
  }
  const types = [];
  for (const r of state.rows) {
    if (!r.estimate) continue;
    const id = r.estimate.memory.per_gpu[0].gpu;
    if (!types.includes(id)) types.push(id);
    if (types.length >= SCALING_TYPES) break;
  }
  if (!types.length) {
    put("#scaling-chart", scalingChart([]), "");
    return;
  }
  const users = parseInt(v.users || "1", 10) || 1;
  const first = state.rows.find((r) => r.estimate);
  try {
    const data = await api("/api/scaling", {
      ...workload(v), quant: first.estimate.quant, engine: first.estimate.engine, batch: users, gpu: types,
    });
    const metric = users > 1 ? "decode_throughput_tokens_per_s" : "decode_tokens_per_s";
    put("#scaling-chart", scalingChart(data.lines, { metric, yLabel: users > 1 ? "tok/s, all users" : "tok/s" }),
      `— ${first.estimate.quant} on ${first.estimate.engine}`);
  } catch (err) {
    put("#scaling-chart", scalingChart([]), `— ${err.message}`);
  }
}

const CIRCUIT_NAMES = { "120v15a": "120 V 15 A", "120v20a": "120 V 20 A", "230v10a": "230 V 10 A", "230v16a": "230 V 16 A" };
const DEFAULT_KWH_PRICE = 0.3;

function watts(w) {
  return w == null ? null : `${Math.round(w).toLocaleString("en-US")} W`;
}

function circuitsText(circuits) {
  if (!circuits || typeof circuits !== "object") return null;
  if (Array.isArray(circuits)) return circuits.join(", ");
  return Object.entries(circuits).map(([k, c]) => {
    const name = CIRCUIT_NAMES[k] || k;
    return c.fits ? `${name} ✓` : `${name}: ${c.circuits_needed} circuits`;
  }).join(" · ");
}

function connectorsText(connectors) {
  if (!connectors || typeof connectors !== "object") return null;
  const parts = Object.entries(connectors).map(([k, n]) => `${n}× ${k}`);
  return parts.length ? parts.join(", ") : null;
}

function limitText(limit) {
  if (!limit) return null;
  const pct = Math.round(limit.fraction * 100);
  const per = limit.watts_per_gpu && limit.watts_per_gpu.length ? ` (${limit.watts_per_gpu[0]} W per GPU)` : "";
  return `${pct}% power${per}: decode ×${fmt(limit.decode_speed_factor, 2)}, prefill ×${fmt(limit.prefill_speed_factor, 2)}`
    + (limit.psu_watts ? `, PSU ${watts(limit.psu_watts)}` : "");
}

function renderPower(row, v) {
  const dl = $("#power dl");
  dl.replaceChildren();
  if (!row || row.error) return;
  const p = row.power || {};
  const e = row.estimate;
  const price = parseFloat(v.kwh) >= 0 ? parseFloat(v.kwh) : DEFAULT_KWH_PRICE;
  const wall = p.workload_wall_watts || null;
  const tps = e && e.speed ? (e.speed.decode_throughput_tokens_per_s ?? e.speed.decode_tokens_per_s) : null;
  let energy = null;
  if (row.energyHour != null) {
    energy = `$${row.energyHour.toFixed(2)}/h at $${price}/kWh`
      + (row.energyMillion != null ? `, $${row.energyMillion.toFixed(2)} per million tokens` : "");
  } else if (wall) {
    const perHour = (wall / 1000) * price;
    energy = `$${perHour.toFixed(2)}/h at $${price}/kWh`;
    if (tps) energy += `, $${((perHour * 1e6) / (tps * 3600)).toFixed(2)} per million tokens`;
  }
  const items = [
    ["GPU board power", watts(p.board_watts)],
    ["GPU draw in this workload", p.draw_watts != null ? `~${watts(p.draw_watts)}` : null],
    ["whole machine, rated", watts(p.system_watts)],
    ["at the wall", p.wall_watts ? `${watts(p.wall_watts)} flat out, ~${watts(p.workload_wall_watts)} in this workload` : null],
    ["PSU", p.psu_watts ? `${watts(p.psu_watts)}${p.psu_units > 1 ? ` (${p.psu_units} units)` : ""} ATX 3.x`
      + (p.psu_watts_atx2 ? `; ${watts(p.psu_watts_atx2)} if ATX 2.x` : "") : "built in"],
    ["transient peak", watts(p.transient_peak_watts)],
    ["GPU connectors", connectorsText(p.connectors)],
    ["wall circuits (80% rule)", circuitsText(p.circuits)],
    ["power limit", limitText(p.power_limit)],
    ["host", p.host ? `${p.host.name} (CPU ${p.host.cpu_watts} W + ${p.host.base_watts} W)` : null],
    ["electricity", energy],
  ];
  if (p.nodes > 1) items.unshift(["nodes", `${p.nodes} (PSU, connectors and circuits per node)`]);
  if (row.platform) {
    items.push(["platform", [row.platform.class, row.platform.pcie_lanes_per_gpu && `${row.platform.pcie_lanes_per_gpu} PCIe lanes per GPU`,
      row.platform.slots && `${row.platform.slots} slots`].filter(Boolean).join(", ")]);
  }
  for (const [k, val] of items) {
    if (val == null || val === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof val === "object" ? JSON.stringify(val) : String(val);
    dl.append(dt, dd);
  }
}

function cliCommand(row, v) {
  const q = (s) => (/^[\w.-]+$/.test(String(s)) ? s : `'${s}'`);
  if (row.kind === "training") {
    const o = row.opt;
    const p = state.trainPlan;
    return `rigplan train ${q(p.model)} --rig ${q(o.rig)} --method ${p.task} --seq-len ${p.seq_len}`
      + ` --micro-batch ${o.micro_batch} --global-batch ${p.global_batch} --zero-stage ${o.zero_stage}`
      + ` --precision ${o.precision}`;
  }
  const e = row.estimate;
  return `rigplan estimate ${q(e.model)} --rig ${q(e.rig)} --engine ${e.engine} --quant ${e.quant}`
    + ` --context ${e.context} --batch ${e.batch}`;
}

async function renderLaunch(row, v) {
  const code = $("#launch-command");
  const extra = $("#launch-extra");
  extra.replaceChildren();
  if (!row || row.error) {
    code.textContent = "";
    return;
  }
  if (!state.meta.features.launch) {
    code.textContent = `# launch commands are not in this install; the same estimate from the CLI:\n${cliCommand(row, v)}`;
    return;
  }
  const training = row.kind === "training";
  const e = row.estimate;
  if (!training && !(state.meta.launch_engines || []).includes(e.engine)) {
    code.textContent = `# rigplan writes launch commands for ${state.meta.launch_engines.join(", ")}; not for ${e.engine}.`
      + `\n# the same estimate from the CLI:\n${cliCommand(row, v)}`;
    return;
  }
  code.textContent = "…";
  try {
    const params = training
      ? { model: state.trainPlan.model, rig: row.rig, task: state.trainPlan.task }
      : { model: e.model, rig: e.rig, engine: e.engine, quant: e.quant, context: e.context, users: e.batch };
    const data = await api("/api/launch", params);
    if (state.rows[state.selected] !== row) return; // another rig was chosen meanwhile
    code.textContent = data.text;
    for (const f of data.files || []) {
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = f.name;
      const pre = document.createElement("pre");
      pre.textContent = f.text;
      details.append(summary, pre);
      extra.append(details);
    }
    if ((data.notes || []).length) {
      const ul = document.createElement("ul");
      ul.className = "notes";
      for (const n of data.notes) {
        const li = document.createElement("li");
        li.textContent = n;
        ul.append(li);
      }
      extra.append(ul);
    }
  } catch (err) {
    code.textContent = `# ${err.message}\n# the same estimate from the CLI:\n${cliCommand(row, v)}`;
  }
}

async function loadTrainingDetail(row, v) {
  const o = row.opt;
  const plan = state.trainPlan;
  const [train, power] = await Promise.all([
    api("/api/train", {
      model: plan.model, rig: o.rig, method: plan.task, seq_len: plan.seq_len, global_batch: plan.global_batch,
      micro_batch: o.micro_batch, zero_stage: o.zero_stage, activation_checkpointing: o.activation_checkpointing,
      offload: o.offload, tensor_parallel: o.tensor_parallel, pipeline_parallel: o.pipeline_parallel, tokens: plan.tokens,
      precision: o.precision,
    }),
    api("/api/power", { rig: o.rig, kwh_price: v.kwh }).catch(() => null),
  ]);
  row.train = train;
  row.power = power ? power.power : null;
  row.platform = power ? power.platform : null;
  if (power && power.energy_usd_per_hour != null) row.energyHour = power.energy_usd_per_hour;
}

function select(i) {
  if (!state.rows.length) return;
  state.selected = Math.min(Math.max(0, i), state.rows.length - 1);
  $$("#rigs tbody tr, #also-rigs tbody tr").forEach((tr) => {
    const on = Number(tr.dataset.index) === state.selected;
    tr.classList.toggle("selected", on);
    tr.setAttribute("aria-current", on ? "true" : "false");
  });
  const row = state.rows[state.selected];
  const v = readForm();
  renderWhy(row);
  renderMemory(row);
  renderScatter();
  renderPower(row, v);
  renderLaunch(row, v);
  markGpus();
  pushUrl();
  if (row.kind === "training" && !row.train) {
    return loadTrainingDetail(row, v).then(() => {
      if (state.rows[state.selected] !== row) return;
      renderMemory(row);
      renderPower(row, v);
    }).catch((err) => put("#memory-chart", memoryChart([]), `— ${err.message}`));
  }
  return Promise.resolve();
}

// ---------------------------------------------------------------- GPU table

const GPU_COLUMNS = [
  ["id", "GPU", (g) => g.id],
  ["gpu_class", "class", (g) => g.gpu_class],
  ["memory_gb", "memory", (g) => `${fmt(g.memory_gb)} GB ${g.memory_type}`],
  ["bandwidth_gb_per_s", "GB/s", (g) => fmt(g.bandwidth_gb_per_s)],
  ["fp16_tensor_tflops", "fp16 TFLOPS", (g) => fmt(g.fp16_tensor_tflops)],
  ["nvlink", "NVLink", (g) => (g.nvlink === "none" ? "—" : `${g.nvlink}${g.nvlink_gb_per_s ? ` ${fmt(g.nvlink_gb_per_s)} GB/s` : ""}`)],
  ["board_power_w", "watts", (g) => String(g.board_power_w)],
  ["price", "price", (g) => (g.price ? `${usd(g.price.usd)} (${g.price.kind} ${String(g.price.as_of).slice(0, 7)})` : "price unknown")],
  ["correction", "note", (g) => g.correction || ""],
];

function gpuSortValue(g, key) {
  if (key === "price") return g.price ? g.price.usd : -1;
  const v = g[key];
  return v == null ? -1 : v;
}

function renderGpus() {
  const table = $("#gpus");
  table.replaceChildren();
  const desc = state.gpuSort.startsWith("-");
  const key = state.gpuSort.replace(/^-/, "");
  const head = table.createTHead().insertRow();
  for (const [k, label] of GPU_COLUMNS) {
    const th = document.createElement("th");
    th.scope = "col";
    th.dataset.key = k;
    th.className = "sortable";
    th.setAttribute("aria-sort", k === key ? (desc ? "descending" : "ascending") : "none");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    button.textContent = label + (k === key ? (desc ? " ▼" : " ▲") : "");
    th.append(button);
    button.addEventListener("click", () => {
      state.gpuSort = key === k && !desc ? `-${k}` : key === k ? k : (k === "id" || k === "gpu_class" ? k : `-${k}`);
      renderGpus();
      pushUrl();
      $(`#gpus th[data-key="${k}"] button`).focus();
    });
    head.append(th);
  }
  const rows = state.gpus.filter((g) => !state.gpuClass || g.gpu_class === state.gpuClass);
  rows.sort((a, b) => {
    const x = gpuSortValue(a, key);
    const y = gpuSortValue(b, key);
    const c = typeof x === "string" ? String(x).localeCompare(String(y)) : x - y;
    return desc ? -c : c;
  });
  const body = table.createTBody();
  for (const g of rows) {
    const tr = body.insertRow();
    tr.dataset.gpu = g.id;
    GPU_COLUMNS.forEach(([k, , show], i) => cell(tr, show(g), i >= 2 && i <= 6 ? "num" : (k === "correction" ? "note" : "")));
  }
  markGpus();
}

function markGpus() {
  const row = state.rows[state.selected];
  let used = new Set();
  if (row && row.estimate) used = new Set(row.estimate.memory.per_gpu.map((g) => g.gpu));
  else if (row && row.opt) used = new Set([row.opt.gpu]);
  $$("#gpus tbody tr").forEach((tr) => tr.classList.toggle("in-plan", used.has(tr.dataset.gpu)));
}

// ---------------------------------------------------------------- flow

function setStatus(text, kind = "") {
  const s = $("#status");
  s.replaceChildren(text);
  s.className = kind;
}

function showError(err) {
  const s = $("#status");
  setStatus(plainWords(err.message), "error");
  const sugg = err.body && err.body.suggestions;
  if (sugg && sugg.length && err.body.error === "UnknownModelError") {
    s.append(" ");
    for (const name of sugg) {
      const a = document.createElement("button");
      a.type = "button";
      a.className = "link";
      a.textContent = name;
      a.addEventListener("click", () => {
        $("#model").value = name;
        describeModel();
        run();
      });
      s.append(a, " ");
    }
  }
}

let runId = 0;

function clearResults() {
  state.rows = [];
  $("#results").hidden = true;
  $("#rigs").replaceChildren();
  $("#also-rigs").replaceChildren();
  $("#also").hidden = true;
  for (const id of ["#why", "#launch-command"]) { const n = $(id); if (n) n.replaceChildren(); }
  for (const fig of ["#memory-chart", "#scaling-chart", "#scatter-chart"]) $(`${fig} .chart`).replaceChildren();
  markGpus();
}

async function run({ newEntry = true } = {}) {
  const v = readForm();
  pushUrl(newEntry);
  clearResults();
  delete document.body.dataset.ready;
  if (!v.model) {
    setStatus("Pick a model to start.");
    return;
  }
  const mine = ++runId;
  setStatus("Working…", "busy");
  $("#go").disabled = true;
  try {
    const { rows, note } = await fetchRows(v);
    if (mine !== runId) return;
    state.rows = rows;
    if (state.selected >= rows.length) state.selected = 0;
    $("#results").hidden = !rows.length;
    renderRigs();
    const ranked = rows.filter((r) => !r.also);
    const fitting = ranked.filter((r) => r.kind === "training" || (r.estimate && r.estimate.fits)).length;
    const also = rows.length - ranked.length ? `, ${rows.length - ranked.length} more worth a look` : "";
    setStatus(rows.length ? `${ranked.length} rigs, ${fitting} fit${also}.${note ? ` ${note}` : ""}` : (note || "No rig qualifies."), rows.length ? "ok" : "error");
    await Promise.all([select(state.selected), renderScaling(v)]);
    document.body.dataset.ready = "1";
  } catch (err) {
    if (mine !== runId) return;
    clearResults();
    showError(err);
    document.body.dataset.ready = "error";
  } finally {
    if (mine === runId) $("#go").disabled = false;
  }
}

async function init() {
  try {
    const [meta, models, quants, gpus] = await Promise.all([
      api("/api/meta"), api("/api/models"), api("/api/quants"), api("/api/gpus"),
    ]);
    state.meta = meta;
    state.models = models.models;
    state.gpus = gpus.gpus;
    $("#version").textContent = `v${meta.version}`;
    fillChoices(quants.quants);
  } catch (err) {
    setStatus(`Cannot reach the rigplan API: ${err.message}`, "error");
    return;
  }
  const values = readUrl();
  writeForm(values);
  $("#gpu-class-filter").value = state.gpuClass;
  applyMode();
  describeModel();
  renderGpus();

  $("#form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.selected = 0;
    run();
  });
  $("#model").addEventListener("input", describeModel);
  $("#task").addEventListener("change", () => { applyMode(); pushUrl(); });
  $("#rigs-input").addEventListener("input", applyMode);
  $("#gpu-class-filter").addEventListener("change", (ev) => {
    state.gpuClass = ev.target.value;
    renderGpus();
    pushUrl();
  });
  $("#share").addEventListener("click", async () => {
    pushUrl();
    try { await navigator.clipboard.writeText(location.href); setStatus("Link copied.", "ok"); } catch { setStatus(location.href); }
  });
  $("#copy-launch").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText($("#launch-command").textContent); } catch { /* no clipboard */ }
  });
  document.body.dataset.loaded = "1";
  window.addEventListener("popstate", () => {
    // Back / Forward: the URL holds the whole question; ask it again without a new entry.
    const again = readUrl();
    writeForm(again);
    $("#gpu-class-filter").value = state.gpuClass;
    applyMode();
    describeModel();
    renderGpus();
    if (again.model) run({ newEntry: false });
    else { clearResults(); setStatus("Pick a model to start."); }
  });
  if (values.model) await run({ newEntry: false });
  else setStatus("Pick a model to start.");
}

init();
