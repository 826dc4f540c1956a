/// The one page `uso serve` shows at `/`: self-contained (inline CSS and JS, no CDN, nothing
/// outside this server), talking only to the JSON API. tools/e2e/browser_test.py relies on these
/// element ids: prompt, file-content, file-style1, file-style2, generate, progress, progress-text,
/// cancel, result-image, download, seed-used, history. Style slots beyond the second (file-style3,
/// ...) are added by the "add-style" button, up to the server's maxStyleImages.
enum Page {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>uso — style- and subject-driven generation</title>
<link rel="icon" href="data:,">
<style>
  :root { --bg:#f6f7f9; --panel:#fff; --ink:#1d2330; --muted:#667085; --line:#dde1e8; --accent:#3b5bdb; --accent-ink:#fff; --bad:#c92a2a; --ok:#2b8a3e; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:var(--ink); }
  header { display:flex; align-items:center; gap:16px; padding:12px 24px; background:var(--panel); border-bottom:1px solid var(--line); }
  header h1 { font-size:20px; margin:0; letter-spacing:.5px; }
  header .model { color:var(--muted); font-size:13px; }
  header .queue { margin-left:auto; color:var(--muted); font-size:13px; }
  #token-box { display:none; gap:6px; align-items:center; }
  #token-box.shown { display:flex; }
  main { display:grid; grid-template-columns:minmax(340px, 460px) 1fr; gap:20px; padding:20px 24px; max-width:1400px; margin:0 auto; }
  @media (max-width: 900px) { main { grid-template-columns:1fr; } }
  .panel { background:var(--panel); border:1px solid var(--line); border-radius:10px; padding:16px; }
  h2 { font-size:15px; margin:0 0 10px; }
  label { display:block; font-weight:600; font-size:13px; margin:10px 0 4px; }
  textarea { width:100%; min-height:70px; resize:vertical; font:inherit; padding:8px; border:1px solid var(--line); border-radius:6px; }
  input[type=number], input[type=password] { font:inherit; padding:5px 8px; border:1px solid var(--line); border-radius:6px; width:130px; }
  .refs { display:grid; grid-template-columns:repeat(3, 1fr); gap:10px; }
  #add-style { width:100%; aspect-ratio:1; margin-top:20px; border-style:dashed; color:var(--muted); }
  .drop { position:relative; border:2px dashed var(--line); border-radius:8px; aspect-ratio:1; display:flex; align-items:center; justify-content:center;
          text-align:center; color:var(--muted); font-size:12px; cursor:pointer; overflow:hidden; background:#fafbfc; }
  .drop.over { border-color:var(--accent); background:#eef2ff; }
  .drop img { position:absolute; inset:0; width:100%; height:100%; object-fit:cover; display:none; }
  .drop.filled img { display:block; }
  .drop.filled .hint { display:none; }
  .drop .clear { position:absolute; top:4px; right:4px; display:none; border:0; border-radius:50%; width:24px; height:24px; background:rgba(0,0,0,.6); color:#fff; cursor:pointer; font-size:14px; line-height:24px; padding:0; }
  .drop.filled .clear { display:block; }
  .drop input { display:none; }
  .slot-name { font-size:12px; font-weight:600; margin-bottom:4px; color:var(--ink); }
  .slider { display:grid; grid-template-columns:1fr 64px; gap:8px; align-items:center; }
  .slider output { font-variant-numeric:tabular-nums; text-align:right; font-size:13px; }
  input[type=range] { width:100%; }
  input[type=range]:disabled { opacity:.4; }
  .row { display:flex; gap:10px; align-items:center; flex-wrap:wrap; }
  details { margin-top:12px; border-top:1px solid var(--line); padding-top:8px; }
  summary { cursor:pointer; font-weight:600; font-size:13px; }
  button { font:inherit; cursor:pointer; border-radius:6px; border:1px solid var(--line); background:#fff; padding:6px 12px; }
  button.primary { background:var(--accent); color:var(--accent-ink); border-color:var(--accent); font-weight:600; padding:10px 18px; width:100%; margin-top:16px; font-size:16px; }
  button:disabled { opacity:.5; cursor:default; }
  .progress-wrap { display:flex; gap:10px; align-items:center; }
  .bar { flex:1; height:14px; background:#e9ecf2; border-radius:7px; overflow:hidden; }
  .bar > div { height:100%; width:0; background:var(--accent); transition:width .2s; }
  .bar.done > div { background:var(--ok); }
  .bar.bad > div { background:var(--bad); }
  #progress-text { font-size:13px; color:var(--muted); min-height:1.4em; margin-top:6px; font-variant-numeric:tabular-nums; }
  #result { margin-top:14px; min-height:260px; display:flex; align-items:center; justify-content:center; background:#fafbfc; border:1px solid var(--line); border-radius:8px; }
  #result img { max-width:100%; max-height:70vh; display:none; border-radius:4px; }
  #result.has-image img { display:block; }
  #result.has-image .placeholder { display:none; }
  .placeholder { color:var(--muted); font-size:13px; }
  .meta { font-size:13px; color:var(--muted); margin-top:8px; word-break:break-word; }
  .error { color:var(--bad); font-size:13px; margin-top:8px; white-space:pre-wrap; }
  .cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(180px, 1fr)); gap:12px; }
  .card { background:var(--panel); border:1px solid var(--line); border-radius:8px; overflow:hidden; display:flex; flex-direction:column; font-size:12px; }
  .card.clickable { cursor:pointer; }
  .card.clickable:hover { border-color:var(--accent); }
  .card .thumbs { display:flex; height:110px; background:#eef0f4; }
  .card .thumbs img { flex:1; min-width:0; object-fit:cover; }
  .card .thumbs .none { margin:auto; color:var(--muted); }
  .card .body { padding:8px; display:flex; flex-direction:column; gap:4px; flex:1; }
  .card .prompt { color:var(--ink); font-size:13px; }
  .card .usage, .card .params { color:var(--muted); }
  .card .actions { display:flex; gap:6px; margin-top:auto; padding-top:6px; }
  .badge { display:inline-block; padding:0 6px; border-radius:8px; font-size:11px; background:#e9ecf2; }
  .badge.succeeded { background:#d3f9d8; } .badge.failed { background:#ffe3e3; } .badge.cancelled { background:#fff3bf; } .badge.running { background:#dbe4ff; }
  section.wide { max-width:1400px; margin:0 auto; padding:0 24px 24px; }
  footer { text-align:center; color:var(--muted); font-size:12px; padding:10px 0 24px; }
</style>
</head>
<body>
<header>
  <h1>uso</h1>
  <span class="model" id="model-name">connecting…</span>
  <span class="queue" id="queue-status"></span>
  <span id="token-box"><input type="password" id="token" placeholder="access token"><button id="token-save">Use token</button></span>
</header>

<main>
  <section class="panel" aria-label="inputs">
    <label for="prompt">Prompt</label>
    <textarea id="prompt" placeholder="A beautiful woman.">A beautiful woman.</textarea>

    <label>Reference images <span style="font-weight:400;color:var(--muted)">— drop a file or click</span></label>
    <div class="refs">
      <div><div class="slot-name">Content (subject)</div>
        <div class="drop" data-slot="content" title="Content reference image"><span class="hint">Drop or click</span><img alt="content preview"><button class="clear" title="Clear" aria-label="clear content image">×</button><input type="file" accept="image/png,image/jpeg,image/webp" id="file-content"></div></div>
      <div><div class="slot-name">Style</div>
        <div class="drop" data-slot="style1" title="Style reference image"><span class="hint">Drop or click</span><img alt="style preview"><button class="clear" title="Clear" aria-label="clear style image">×</button><input type="file" accept="image/png,image/jpeg,image/webp" id="file-style1"></div></div>
      <div><div class="slot-name">Extra style (beta)</div>
        <div class="drop" data-slot="style2" title="Extra style reference image"><span class="hint">Drop or click</span><img alt="extra style preview"><button class="clear" title="Clear" aria-label="clear extra style image">×</button><input type="file" accept="image/png,image/jpeg,image/webp" id="file-style2"></div></div>
      <div><button id="add-style" title="Another style image: the reference takes every image after the content as a style" hidden>+ style</button></div>
    </div>

    <label for="width">Width</label>
    <div class="slider"><input type="range" id="width"><output id="width-value"></output></div>
    <label for="height">Height</label>
    <div class="slider"><input type="range" id="height"><output id="height-value"></output></div>
    <div class="row" style="margin-top:8px"><input type="checkbox" id="keep-size"><label for="keep-size" style="margin:0;font-weight:400">Keep input size (from the content image)</label></div>

    <label for="seed">Seed <span style="font-weight:400;color:var(--muted)">(-1 = random)</span></label>
    <div class="row"><input type="number" id="seed" value="-1" min="-1" step="1"><button id="seed-random" title="Random seed">Random</button></div>

    <details>
      <summary>Advanced</summary>
      <label for="steps">Steps</label>
      <div class="slider"><input type="range" id="steps"><output id="steps-value"></output></div>
      <label for="guidance">Guidance</label>
      <div class="slider"><input type="range" id="guidance"><output id="guidance-value"></output></div>
      <label for="content-ref">Content reference size</label>
      <div class="slider"><input type="range" id="content-ref"><output id="content-ref-value"></output></div>
      <label for="step-cache">Step cache</label>
      <select id="step-cache" title="Skip the DiT's later blocks where a step changes little">
        <option value="off">off (every block, as the reference)</option>
        <option value="balanced">balanced (~1.6x fewer evaluations)</option>
        <option value="fast">fast (~2.5x fewer evaluations)</option>
      </select>
    </details>

    <button class="primary" id="generate">Generate</button>
    <div class="error" id="form-error" role="alert"></div>
  </section>

  <section class="panel" aria-label="result">
    <h2>Result</h2>
    <div class="progress-wrap">
      <div class="bar" id="progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow="0"><div></div></div>
      <button id="cancel" disabled>Cancel</button>
    </div>
    <div id="progress-text">Idle.</div>
    <div id="result"><span class="placeholder">The generated image appears here.</span><img id="result-image" alt="generated image"></div>
    <div class="row" style="margin-top:10px"><a id="download" href="#" download hidden>Download PNG</a><button id="reuse-current" hidden>Reuse these settings</button></div>
    <div class="meta" id="seed-used"></div>
    <div class="meta" id="result-params"></div>
    <div class="error" id="job-error"></div>
  </section>
</main>

<section class="wide"><div class="panel"><h2>Examples</h2><div class="cards" id="examples"></div></div></section>
<section class="wide"><div class="panel"><h2>History <span style="font-weight:400;color:var(--muted);font-size:12px">— this server's results</span></h2><div class="cards" id="history"></div></div></section>
<footer>uso · examples from bytedance/USO (Apache-2.0)</footer>

<script>
"use strict";
const $ = (id) => document.getElementById(id);
const state = { caps: null, slots: { content: null, style1: null, style2: null }, job: null, jobSnapshot: null, history: [] };
const blobURLs = new Map();  // image URL on the server -> object URL (fetched with the token)

// ---------- API ----------
function authHeaders() {
  const token = localStorage.getItem("uso-token");
  return token ? { "Authorization": "Bearer " + token } : {};
}
async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...(options.headers || {}), ...authHeaders() } });
  if (response.status === 401) { $("token-box").classList.add("shown"); }
  return response;
}
async function errorText(response) {
  try { const body = await response.json(); return body.error || response.statusText; } catch { return response.status + " " + response.statusText; }
}
async function imageURL(path) {
  if (blobURLs.has(path)) return blobURLs.get(path);
  const response = await api(path);
  if (!response.ok) throw new Error(await errorText(response));
  const url = URL.createObjectURL(await response.blob());
  blobURLs.set(path, url);
  return url;
}
async function fetchBlob(path) {
  const response = await api(path);
  if (!response.ok) throw new Error(await errorText(response));
  return await response.blob();
}

// ---------- form ----------
function setupSlider(id, min, max, step, value, format = (v) => v) {
  const input = $(id), output = $(id + "-value");
  Object.assign(input, { min, max, step });
  input.value = value;
  const show = () => { output.textContent = format(Number(input.value)); };
  input.addEventListener("input", show);
  show();
}
function setSlider(id, value) { const input = $(id); input.value = value; input.dispatchEvent(new Event("input")); }

function applyCapabilities(caps) {
  state.caps = caps;
  $("model-name").textContent = caps.modelName;
  setupSlider("width", caps.minSide, caps.maxSide, caps.sideStep, caps.defaultSide);
  setupSlider("height", caps.minSide, caps.maxSide, caps.sideStep, caps.defaultSide);
  setupSlider("steps", 1, caps.maxSteps, 1, caps.defaultSteps);
  setupSlider("guidance", caps.minGuidance, caps.maxGuidance, 0.1, caps.defaultGuidance, (v) => v.toFixed(1));
  setupSlider("content-ref", caps.minContentReferenceSize, caps.maxContentReferenceSize, 16, caps.defaultContentReferenceSize);
  updateAddStyle();
}

// Style slots are style1, style2, ...; the first two are on the page, "+ style" adds more.
function styleSlots() { return Object.keys(state.slots).filter((slot) => slot.startsWith("style")); }
function addStyleSlot() {
  const n = styleSlots().length + 1, slot = `style${n}`;
  const cell = document.createElement("div");
  cell.innerHTML = `<div class="slot-name">Extra style ${n - 1}</div><div class="drop" data-slot="${slot}" title="Extra style reference image"><span class="hint">Drop or click</span><img alt="extra style preview"><button class="clear" title="Clear" aria-label="clear extra style image">×</button><input type="file" accept="image/png,image/jpeg,image/webp" id="file-${slot}"></div>`;
  $("add-style").parentElement.before(cell);
  state.slots[slot] = null;
  setupDropZone(cell.querySelector(".drop"));
  updateAddStyle();
  return slot;
}
function updateAddStyle() {
  $("add-style").hidden = !state.caps || styleSlots().length >= state.caps.maxStyleImages;
}
async function setStyles(urls) {
  while (styleSlots().length < Math.min(urls.length, state.caps.maxStyleImages)) addStyleSlot();
  for (const [index, slot] of styleSlots().entries()) setSlot(slot, urls[index] ? await fetchBlob(urls[index]) : null);
}

function setSlot(slot, blob) {
  state.slots[slot] = blob;
  const drop = document.querySelector(`.drop[data-slot="${slot}"]`);
  const img = drop.querySelector("img");
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  if (blob) {
    const url = URL.createObjectURL(blob);
    img.src = url; img.dataset.url = url;
    drop.classList.add("filled");
  } else {
    img.removeAttribute("src"); delete img.dataset.url;
    drop.classList.remove("filled");
    drop.querySelector("input").value = "";
  }
  updateKeepSize();
}
function acceptFile(slot, file) {
  if (!file) return;
  if (!/^image\/(png|jpeg|webp)$/.test(file.type)) { showFormError(`${file.name}: only PNG, JPEG and WebP images can be used`); return; }
  showFormError("");
  setSlot(slot, file);
}
function setupDropZone(drop) {
  const slot = drop.dataset.slot, input = drop.querySelector("input");
  drop.addEventListener("click", (event) => { if (!event.target.classList.contains("clear")) input.click(); });
  input.addEventListener("click", (event) => event.stopPropagation());
  input.addEventListener("change", () => acceptFile(slot, input.files[0]));
  drop.querySelector(".clear").addEventListener("click", (event) => { event.stopPropagation(); setSlot(slot, null); });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); acceptFile(slot, event.dataTransfer.files[0]); });
}
function updateKeepSize() {
  const keep = $("keep-size");
  keep.disabled = !state.slots.content;
  if (keep.disabled) keep.checked = false;
  $("width").disabled = $("height").disabled = keep.checked;
}
function showFormError(text) { $("form-error").textContent = text; }

// ---------- jobs ----------
function formatSeconds(seconds) {
  if (seconds == null || !isFinite(seconds)) return "";
  seconds = Math.max(0, Math.round(seconds));
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}
const stageNames = { loading: "Loading the model", encodingPrompt: "Encoding the prompt", encodingStyle: "Encoding the style images",
  encodingContent: "Encoding the content image", denoising: "Denoising", decoding: "Decoding", saving: "Saving", done: "Done" };

function describe(snapshot) {
  const p = snapshot.progress;
  switch (snapshot.status) {
    case "queued": return `Queued — position ${snapshot.queuePosition ?? "?"} in line`;
    case "running":
      if (p.stage === "denoising") return `Step ${p.step}/${p.totalSteps}` + (p.etaSeconds != null ? ` · ETA ${formatSeconds(p.etaSeconds)}` : "") + ` · ${formatSeconds(p.elapsedSeconds)} elapsed`;
      return (stageNames[p.stage] || "Starting") + "…";
    case "succeeded": return `Done: ${p.totalSteps}/${p.totalSteps} steps in ${formatSeconds(p.elapsedSeconds)}`;
    case "cancelled": return "Cancelled.";
    case "failed": return "Failed.";
  }
  return snapshot.status;
}
function describeParameters(p) {
  return `${p.width}×${p.height} · ${p.steps} steps · guidance ${p.guidance} · content ref ${p.contentReferenceSize}` + (p.keepInputSize ? " · kept input size" : "")
    + (p.stepCache && p.stepCache !== "off" ? ` · ${p.stepCache} step cache` : "");
}

async function showSnapshot(snapshot) {
  state.jobSnapshot = snapshot;
  const bar = $("progress"), percent = Math.round(snapshot.progress.fraction * 100);
  bar.firstElementChild.style.width = percent + "%";
  bar.setAttribute("aria-valuenow", String(percent));
  bar.classList.toggle("done", snapshot.status === "succeeded");
  bar.classList.toggle("bad", snapshot.status === "failed" || snapshot.status === "cancelled");
  $("progress-text").textContent = describe(snapshot);
  $("cancel").disabled = snapshot.status !== "queued" && snapshot.status !== "running";
  $("job-error").textContent = snapshot.error || "";
  $("seed-used").textContent = `Seed used: ${snapshot.parameters.seed}` + (snapshot.parameters.randomSeed ? " (random)" : "");
  $("result-params").textContent = describeParameters(snapshot.parameters);
  $("reuse-current").hidden = false;
  if (snapshot.status === "succeeded" && snapshot.imageURL) await showResultImage(snapshot);
}
async function showResultImage(snapshot) {
  try {
    const url = await imageURL(snapshot.imageURL);
    const img = $("result-image");
    img.src = url;
    $("result").classList.add("has-image");
    const link = $("download");
    link.href = url; link.download = snapshot.fileName || `uso-${snapshot.parameters.seed}.png`; link.hidden = false;
  } catch (error) { $("job-error").textContent = "cannot load the result: " + error.message; }
}
function clearResult() {
  $("result").classList.remove("has-image");
  $("result-image").removeAttribute("src");
  $("download").hidden = true;
}

async function follow(id) {
  // Server-Sent Events over fetch (so the token header goes along); falls back to polling.
  try {
    const response = await api(`/api/jobs/${id}/events`);
    if (!response.ok || !response.body) throw new Error(await errorText(response));
    const reader = response.body.getReader(), decoder = new TextDecoder();
    let buffer = "", last = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        const data = event.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim()).join("\n");
        if (!data) continue;
        last = JSON.parse(data);
        if (state.job === id) await showSnapshot(last);
      }
    }
    if (last && ["succeeded", "failed", "cancelled"].includes(last.status)) return last;
  } catch (error) { console.warn("event stream failed, polling instead:", error); }
  for (;;) {
    const response = await api(`/api/jobs/${id}`);
    if (!response.ok) throw new Error(await errorText(response));
    const snapshot = await response.json();
    if (state.job === id) await showSnapshot(snapshot);
    if (["succeeded", "failed", "cancelled"].includes(snapshot.status)) return snapshot;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function generate() {
  showFormError("");
  const form = new FormData();
  form.append("prompt", $("prompt").value);
  form.append("seed", $("seed").value || "-1");
  form.append("width", $("width").value);
  form.append("height", $("height").value);
  form.append("keepInputSize", $("keep-size").checked ? "true" : "false");
  form.append("steps", $("steps").value);
  form.append("guidance", $("guidance").value);
  form.append("contentReferenceSize", $("content-ref").value);
  form.append("stepCache", $("step-cache").value);
  if (state.slots.content) form.append("contentImage", state.slots.content, "content");
  for (const slot of styleSlots()) if (state.slots[slot]) form.append("styleImages", state.slots[slot], slot);
  $("generate").disabled = true;
  try {
    const response = await api("/api/jobs", { method: "POST", body: form });
    if (!response.ok) {
      const retry = response.headers.get("Retry-After");
      showFormError(await errorText(response) + (retry ? ` (Retry-After: ${retry} s)` : ""));
      return;
    }
    const snapshot = await response.json();
    state.job = snapshot.id;
    clearResult();
    await showSnapshot(snapshot);
    refreshHistory();
    follow(snapshot.id).then(() => { refreshHistory(); refreshQueue(); }).catch((error) => { $("job-error").textContent = error.message; });
  } catch (error) {
    showFormError("cannot reach the server: " + error.message);
  } finally {
    $("generate").disabled = false;
  }
}
async function cancelJob() {
  if (!state.job) return;
  $("cancel").disabled = true;
  const response = await api(`/api/jobs/${state.job}`, { method: "DELETE" });
  if (!response.ok) $("job-error").textContent = await errorText(response);
}

// ---------- reuse, examples, history ----------
async function reuse(snapshot) {
  const p = snapshot.parameters;
  $("prompt").value = p.prompt;
  $("seed").value = String(p.seed);
  setSlider("width", p.width); setSlider("height", p.height);
  setSlider("steps", p.steps); setSlider("guidance", p.guidance); setSlider("content-ref", p.contentReferenceSize);
  $("step-cache").value = p.stepCache || "off";
  try {
    setSlot("content", snapshot.contentImageURL ? await fetchBlob(snapshot.contentImageURL) : null);
    await setStyles(snapshot.styleImageURLs);
  } catch (error) { showFormError("cannot load the reference images of that job: " + error.message); }
  $("keep-size").checked = p.keepInputSize && !!state.slots.content;
  updateKeepSize();
  window.scrollTo({ top: 0, behavior: "smooth" });
}
async function applyPreset(preset) {
  $("prompt").value = preset.prompt;
  $("seed").value = String(preset.seed);
  try {
    setSlot("content", preset.content ? await fetchBlob(preset.content) : null);
    await setStyles(preset.styles);
  } catch (error) { showFormError("cannot load the example images: " + error.message); }
}
function card({ images, prompt, lines, badge, onClick, actions = [] }) {
  const element = document.createElement("div");
  element.className = "card" + (onClick ? " clickable" : "");
  const thumbs = document.createElement("div");
  thumbs.className = "thumbs";
  if (images.length === 0) { const none = document.createElement("span"); none.className = "none"; none.textContent = "text only"; thumbs.append(none); }
  for (const source of images) {
    const img = document.createElement("img");
    img.alt = "";
    Promise.resolve(source).then((url) => { img.src = url; }).catch(() => {});
    thumbs.append(img);
  }
  const body = document.createElement("div");
  body.className = "body";
  const text = document.createElement("div");
  text.className = "prompt";
  text.textContent = prompt || "(empty prompt)";
  body.append(text);
  if (badge) { const b = document.createElement("span"); b.className = "badge " + badge; b.textContent = badge; body.append(b); }
  for (const line of lines) { const l = document.createElement("div"); l.className = "params"; l.textContent = line; body.append(l); }
  if (actions.length) {
    const row = document.createElement("div"); row.className = "actions";
    for (const [label, action] of actions) {
      const button = document.createElement("button");
      button.textContent = label;
      button.addEventListener("click", (event) => { event.stopPropagation(); action(); });
      row.append(button);
    }
    body.append(row);
  }
  element.append(thumbs, body);
  if (onClick) element.addEventListener("click", onClick);
  return element;
}
async function loadExamples() {
  const response = await api("/api/presets");
  if (!response.ok) return;
  const presets = await response.json();
  $("examples").replaceChildren(...presets.map((preset) => card({
    images: [preset.content, ...preset.styles].filter(Boolean),
    prompt: preset.prompt, lines: [`${preset.usage} · seed ${preset.seed}`],
    onClick: () => applyPreset(preset),
  })));
}
async function refreshHistory() {
  const response = await api("/api/jobs");
  if (!response.ok) return;
  state.history = await response.json();
  $("history").replaceChildren(...state.history.map((snapshot) => card({
    images: snapshot.imageURL ? [imageURL(snapshot.imageURL)] : [],
    prompt: snapshot.parameters.prompt, badge: snapshot.status,
    lines: [`seed ${snapshot.parameters.seed}`, describeParameters(snapshot.parameters)],
    onClick: () => { state.job = snapshot.id; clearResult(); showSnapshot(snapshot); },
    actions: [["Reuse these settings", () => reuse(snapshot)]],
  })));
}
async function refreshQueue() {
  try {
    const response = await fetch("/health");
    const health = await response.json();
    $("queue-status").textContent = `queue: ${health.running} running, ${health.waiting} waiting (max ${health.capacity})`;
  } catch { $("queue-status").textContent = "server unreachable"; }
}

async function start() {
  for (const drop of document.querySelectorAll(".drop")) setupDropZone(drop);
  $("add-style").addEventListener("click", addStyleSlot);
  $("keep-size").addEventListener("change", updateKeepSize);
  $("seed-random").addEventListener("click", () => { $("seed").value = "-1"; });
  $("generate").addEventListener("click", generate);
  $("cancel").addEventListener("click", cancelJob);
  $("reuse-current").addEventListener("click", () => state.jobSnapshot && reuse(state.jobSnapshot));
  $("token-save").addEventListener("click", () => { localStorage.setItem("uso-token", $("token").value); location.reload(); });
  updateKeepSize();
  const response = await api("/api/info");
  if (!response.ok) { $("model-name").textContent = await errorText(response); return; }
  const info = await response.json();
  applyCapabilities(info.capabilities);
  await Promise.all([loadExamples(), refreshHistory(), refreshQueue()]);
  setInterval(refreshQueue, 5000);
}
start();
</script>
</body>
</html>
"""#
}
