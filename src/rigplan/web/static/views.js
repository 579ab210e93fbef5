// The page's extra questions: what a rig can run, serving capacity, context / batch sweeps and
// a model of one's own (config.json).  Each form asks one /api operation and shows its answer;
// every new question clears the old answer first.

import { api, post, postBytes } from "./api.js";
import { fmt, scalingChart } from "./charts.js";

const $ = (sel, root = document) => root.querySelector(sel);
const GIB = 2 ** 30;
const MAX_UPLOAD_CHARS = 60000; // the server's limit (schemas.MAX_UPLOAD_CHARS)
const MAX_GGUF_HEADER_BYTES = 16 * 1024 * 1024; // the server's limit (rigplan.GGUF_HEADER_LIMIT_BYTES)

function status(id, text, kind = "") {
  const s = $(id);
  s.textContent = text;
  s.className = `tool-status ${kind}`;
}

// The model a tool uses: its own field, else the main form's.
function modelFor(id) {
  return $(id).value.trim() || $("#model").value.trim();
}

function speedRange(value, range) {
  if (value == null) return "—";
  return range ? `${fmt(value)} (${fmt(range[0])}–${fmt(range[1])})` : fmt(value);
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.append(td);
}

async function ask(formId, statusId, work) {
  const button = $(`${formId} button[type=submit]`);
  button.disabled = true;
  status(statusId, "Working…", "busy");
  try {
    status(statusId, (await work()) || "", "ok");
  } catch (err) {
    status(statusId, err.message, "error");
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------ what can my GPUs run?

const FIT_COLUMNS = ["model", "quant", "parameters", "longest context", "memory", "decode tok/s (range)"];

function renderFits(data) {
  const table = $("#fits-table");
  const head = document.createElement("tr");
  for (const c of FIT_COLUMNS) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = c;
    head.append(th);
  }
  const body = document.createElement("tbody");
  for (const r of data.rows) {
    const tr = document.createElement("tr");
    tr.tabIndex = 0;
    tr.dataset.model = r.model;
    cell(tr, r.model);
    cell(tr, r.quant);
    cell(tr, `${fmt(r.parameters / 1e9)} B`, "num");
    cell(tr, r.max_context.toLocaleString("en-US"), "num");
    cell(tr, `${fmt(r.memory_bytes / GIB)} GiB`, "num");
    cell(tr, speedRange(r.decode_tokens_per_s, r.decode_tokens_per_s_range), "num");
    const pick = () => { $("#model").value = r.model; $("#model").dispatchEvent(new Event("input")); $("#model").focus(); };
    tr.addEventListener("click", pick);
    tr.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); }
    });
    body.append(tr);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  table.replaceChildren(thead, body);
  $("#fits-note").textContent = data.rows.length
    ? `${data.fitting_pairs} model × quant pairs fit ${data.rig} (of ${data.checked_pairs} tried); biggest first. `
      + `Speeds: ${data.assumptions[0]}. Enter on a row puts the model in the form above.`
    : `Nothing in the catalogue fits ${data.rig} with every layer on the GPUs.`;
}

function wireFits() {
  $("#fits-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("#fits-table").replaceChildren();
    $("#fits-note").textContent = "";
    ask("#fits-form", "#fits-status", async () => {
      const rig = $("#fits-rig").value.trim();
      if (!rig) throw new Error("Name the GPUs you have, e.g. 2x rtx-3090.");
      renderFits(await api("/api/what-fits", {
        rig, engine: $("#fits-engine").value, min_tokens_per_s: $("#fits-min").value.trim(),
      }));
    });
  });
}

// ------------------------------------------------ capacity

function fact(dl, term, text) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = text;
  dl.append(dt, dd);
}

const LIMITS = {
  speed: "the speed each user needs", "kv cache": "memory for the KV cache",
  max_num_seqs: "the engine's limit on sequences at once", "does not fit": "the model does not fit this rig",
};

function renderCapacity(c) {
  const dl = $("#cap-result");
  const range = c.users_served_range ? ` (range ${c.users_served_range.map((v) => fmt(v)).join("–")})` : "";
  fact(dl, "Users served at once", `${fmt(c.users_served)}${range}, each at ${fmt(c.min_tokens_per_s)} tok/s or faster`);
  fact(dl, `${fmt(c.users_asked)} users asked`, c.meets ? "served" : "not served at that speed");
  if (c.limited_by) fact(dl, "Limited by", LIMITS[c.limited_by] || String(c.limited_by));
  if (c.per_user_tokens_per_s != null) {
    fact(dl, "Speed per user", speedRange(c.per_user_tokens_per_s, c.per_user_tokens_per_s_range));
  }
  fact(dl, "Setup", `${c.model} · ${c.quant} · ${c.engine} · ${c.rig} · context ${c.context.toLocaleString("en-US")}`);
  fact(dl, "Each request", `${fmt(c.prompt_tokens)} new prompt + ${fmt(c.output_tokens)} generated tokens (per-user speed includes the prompts)`);
  if (c.engine_profile) fact(dl, "Speed model", c.engine_profile);
}

function wireCapacity() {
  $("#capacity-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("#cap-result").replaceChildren();
    ask("#capacity-form", "#cap-status", async () => {
      const model = modelFor("#cap-model");
      const rig = $("#cap-rig").value.trim();
      if (!model || !rig) throw new Error("Pick a model and name a rig.");
      renderCapacity(await api("/api/capacity", {
        model, rig, users: $("#cap-users").value.trim(), context: $("#cap-context").value.trim(),
        min_tok_s: $("#cap-speed").value.trim(), prompt_tokens: $("#cap-prompt").value.trim(),
        output_tokens: $("#cap-output").value.trim(),
      }));
    });
  });
}

// ------------------------------------------------ sweeps

function renderSweep(data) {
  const axis = data.axis;
  const label = axis === "context" ? "context (tokens)" : "sequences at once";
  const line = (name, metric) => ({
    gpu: name,
    points: data.points.map((p) => ({ ...p, rig: `${axis} ${p[axis].toLocaleString("en-US")}`, value: p[metric] })),
  });
  const lines = [line("per sequence", "decode_tokens_per_s")];
  if (axis === "batch") lines.push(line("all sequences", "decode_throughput_tokens_per_s"));
  const svg = scalingChart(lines, { metric: "value", xKey: axis, xLabel: label, yLabel: "tok/s", title: `speed vs ${label}` });
  const box = svg.viewBox && svg.viewBox.baseVal;
  if (box && box.width) svg.style.minWidth = `${box.width}px`;
  $("#sweep-chart .chart").replaceChildren(svg);
  const misses = data.points.filter((p) => !p.fits).map((p) => p[axis].toLocaleString("en-US"));
  $("#sweep-chart .sub").textContent = `— ${data.model} on ${data.rig}`
    + (misses.length ? `; does not fit at ${misses.join(", ")}` : "");
}

function wireSweep() {
  $("#sweep-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    $("#sweep-chart .chart").replaceChildren();
    $("#sweep-chart .sub").textContent = "";
    ask("#sweep-form", "#sweep-status", async () => {
      const model = modelFor("#sweep-model");
      const rig = $("#sweep-rig").value.trim();
      if (!model || !rig) throw new Error("Pick a model and name a rig.");
      renderSweep(await api("/api/sweep", { model, rig, axis: $("#sweep-axis").value, quant: $("#quant").value }));
    });
  });
}

// ------------------------------------------------ your own model

function wireUpload() {
  $("#upload-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    ask("#upload-form", "#upload-status", async () => {
      const file = $("#upload-file").files[0];
      if (!file) throw new Error("Choose a config.json or .gguf file first.");
      const name = file.name.replace(/[^A-Za-z0-9 ._-]/g, "_").replace(/^[^A-Za-z0-9]+/, "").slice(0, 40) || "uploaded";
      const answer = await uploadModel(file, name);
      $("#model").value = answer.id;
      $("#model").dispatchEvent(new Event("input"));
      $("#form").requestSubmit();
      const m = answer.model;
      return `Using ${answer.id}: ${m.architecture}, ${fmt(m.published_param_count / 1e9)} B parameters`
        + `${answer.notes.length ? ` (${answer.notes.join("; ")})` : ""}.`;
    });
  });
}

// A .gguf file (by its magic bytes): only its start is read and sent (metadata and tensor
// table; a cut header is refused with the field it ends in).  Else a config.json, as text.
async function uploadModel(file, name) {
  const magic = new Uint8Array(await file.slice(0, 4).arrayBuffer());
  if (String.fromCharCode(...magic) === "GGUF") {
    const head = await file.slice(0, Math.min(file.size, MAX_GGUF_HEADER_BYTES)).arrayBuffer();
    return postBytes("/api/models/upload-gguf", { name }, head);
  }
  if (file.size > MAX_UPLOAD_CHARS) throw new Error(`${file.name} is ${file.size.toLocaleString("en-US")} bytes; a config.json is a few KB (limit 60 KB).`);
  return post("/api/models/upload", { name, config: await file.text() });
}

async function fillEngines() {
  try {
    const meta = await api("/api/meta");
    const select = $("#fits-engine");
    for (const e of meta.engines) {
      const o = document.createElement("option");
      o.value = e;
      o.textContent = e;
      select.append(o);
    }
  } catch { /* the main form reports a server that does not answer */ }
}

wireFits();
wireCapacity();
wireSweep();
wireUpload();
fillEngines();
