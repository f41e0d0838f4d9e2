// The page: plain JavaScript against the service's own endpoints. No framework, no build step, no network
// beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

// One request; throws an Error whose message is the server's own words (or says what failed on the way).
async function call(path, init) {
  let response;
  try {
    response = await fetch(path, Object.assign({}, init, { headers: headers(init && init.headers) }));
  } catch (e) {
    throw new Error(`the server did not answer (${e.message}); is it still running?`);
  }
  if (!response.ok) {
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) message = body.error.message;
    } catch (e) { /* not JSON: keep the status line */ }
    const id = response.headers.get("X-Request-ID");
    const err = new Error(message);
    err.status = response.status;
    err.requestId = id;
    throw err;
  }
  return response;
}

const postJson = (path, body) => call(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

function showError(id, err) {
  const el = $(id);
  if (!err) { el.hidden = true; el.textContent = ""; return; }
  el.textContent = err.message + (err.requestId ? ` (request ${err.requestId})` : "");
  el.hidden = false;
}

function fillList(list, items) {
  list.replaceChildren(...items.map((t) => { const li = document.createElement("li"); li.textContent = t; return li; }));
}

async function showGif(img, response) {
  const url = URL.createObjectURL(await response.blob());
  if (img.dataset.url) URL.revokeObjectURL(img.dataset.url);
  img.dataset.url = url;
  img.src = url;
}

async function busy(button, work) {
  button.disabled = true;
  try { await work(); } finally { button.disabled = false; }
}

// ---- what the model says about its input ----------------------------------------------------------------
function showWarnings(element, warnings) {
  // Warnings are {code, message}: the page chooses by code and shows the message (core/answer_warnings.py).
  element.textContent = (warnings || []).map((w) => w.message).join(" ");
  element.hidden = !(warnings || []).length;
}

function familiarityText(body) {
  if (body.familiarity === null || body.familiarity === undefined) return "";
  return `familiarity ${body.familiarity.toFixed(2)} (${body.familiar ? "like" : "unlike"} what the model was trained on)`;
}

// The clip as sent: a GIF as an image; mp4, webm and mov as a video the browser plays (avi and .npy it cannot).
function showPreview(file) {
  const url = URL.createObjectURL(file), img = $("input-preview"), video = $("input-video");
  const isGif = /\.gif$/i.test(file.name), playable = /\.(mp4|webm|mov|m4v)$/i.test(file.name);
  img.hidden = !isGif;
  video.hidden = !playable;
  img.src = isGif ? url : "";
  if (playable) video.src = url; else video.removeAttribute("src");
  $("input-figure").hidden = !isGif && !playable;
}

// ---- a video -> captions, reconstruction, latent_id -----------------------------------------------------
async function captionFile(file) {
  showError("error-video", null);
  const form = new FormData();
  form.append("video", file, file.name);
  for (const name of ["num_captions", "beam_size", "seed"]) {
    const value = document.querySelector(`#video-form [name=${name}]`).value;
    if (value !== "") form.append(name, value);
  }
  try {
    const body = await (await call("/caption", { method: "POST", body: form })).json();
    fillList($("captions"), body.captions || [body.caption]);
    $("caption-note").textContent = body.note || "";
    $("caption-note").hidden = !body.note;
    showWarnings($("caption-warning"), body.warnings);
    $("caption-familiarity").textContent = familiarityText(body);
    $("latent-id").textContent = body.latent_id;
    showPreview(file);
    $("video-result").hidden = false;
    await showGif($("reconstruction-img"), await postJson("/reconstruct", { latent_id: body.latent_id, }));
  } catch (err) {
    $("video-result").hidden = true;
    showError("error-video", err);
  }
}

function setupVideo() {
  const form = $("video-form"), input = $("video-file"), zone = $("drop-zone");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const file = input.files[0];
    if (!file) { showError("error-video", new Error("choose a clip first (mp4, webm, avi, mov, gif or .npy)")); return; }
    busy($("caption-button"), () => captionFile(file));
  });
  input.addEventListener("change", () => { if (input.files[0]) busy($("caption-button"), () => captionFile(input.files[0])); });
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) busy($("caption-button"), () => captionFile(file));
  });
}

function sampleButton(sample) {
  const li = document.createElement("li"), button = document.createElement("button"), img = document.createElement("img");
  button.type = "button";
  button.className = "sample";
  button.dataset.sample = sample.name;
  button.setAttribute("aria-label", `caption the sample clip: ${sample.caption}`);
  img.src = sample.url;
  img.alt = "";
  button.append(img, document.createTextNode(sample.caption));
  button.addEventListener("click", () => busy(button, async () => {
    const blob = await (await call(sample.url)).blob();
    await captionFile(new File([blob], sample.url.split("/").pop(), { type: "image/gif" }));
  }));
  li.append(button);
  return li;
}

// ---- a sentence -> paraphrases, generated clip ----------------------------------------------------------
async function generate(sentence) {
  showError("error-sentence", null);
  try {
    const para = await (await postJson("/paraphrase", { sentence, num_alternatives: 3 })).json();
    fillList($("paraphrases"), [para.sentence, ...para.alternatives]);
    $("sentence-latent-id").textContent = para.latent_id;
    const unknown = para.unknown_words || [];
    $("unknown-words").textContent = unknown.length
      ? `Words this model does not know (read as <unk>): ${unknown.join(", ")}. See /vocab for the ones it knows.` : "";
    $("unknown-words").hidden = unknown.length === 0;
    showWarnings($("sentence-warning"), (para.warnings || []).filter((w) => w.code !== "some_unknown_words"));
    $("sentence-result").hidden = false;
    await showGif($("generated-img"), await postJson("/sentence-to-video", { latent_id: para.latent_id, }));
  } catch (err) {
    $("sentence-result").hidden = true;
    showError("error-sentence", err);
  }
}

function setupSentence() {
  $("sentence-form").addEventListener("submit", (e) => {
    e.preventDefault();
    busy($("generate-button"), () => generate($("sentence-input").value));
  });
}

// ---- the latent map -------------------------------------------------------------------------------------
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function mapScale(points, size, pad) {
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, y1 - y0) || 1;
  return (p) => [pad + ((p.x - x0) / span) * (size - 2 * pad), size - pad - ((p.y - y0) / span) * (size - 2 * pad)];
}

// A clip's video and its sentence may land on one spot (the better the model, the likelier), and other clips'
// points near them: marks that would cover each other are pushed apart until MARK_GAP pixels separate every two
// centres (a few rounds of pairwise pushes), so each stays visible and clickable.
const MARK_GAP = 26;

function spread(xy, size) {
  const pts = xy.map(([x, y]) => [x, y]);
  for (let round = 0; round < 60; round++) {
    let moved = false;
    for (let i = 0; i < pts.length; i++) {
      for (let j = i + 1; j < pts.length; j++) {
        const [dx, dy] = [pts[j][0] - pts[i][0], pts[j][1] - pts[i][1]];
        const dist = Math.hypot(dx, dy);
        if (dist >= MARK_GAP) continue;
        const [ux, uy] = dist > 0.5 ? [dx / dist, dy / dist] : [Math.cos(i + j), Math.sin(i + j)];
        const push = (MARK_GAP - dist) / 2 + 0.5;
        pts[i] = [pts[i][0] - ux * push, pts[i][1] - uy * push];
        pts[j] = [pts[j][0] + ux * push, pts[j][1] + uy * push];
        moved = true;
      }
    }
    for (const p of pts) for (const k of [0, 1]) p[k] = Math.min(size - 14, Math.max(14, p[k]));
    if (!moved) break;
  }
  return pts;
}

function placePoints(data, at, size) {
  const pts = spread(data.points.map(at), size);
  return new Map(data.points.map((p, i) => [p, pts[i]]));
}

function drawMap(data) {
  const size = 400, where = placePoints(data, mapScale(data.points, size, 40), size);
  const root = svg("svg", { viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": "2-D map of the SLRs" });
  const captions = Object.fromEntries(data.samples.map((s) => [s.name, s.caption]));
  for (const s of data.samples) {
    const pair = data.points.filter((p) => p.sample === s.name);
    if (pair.length === 2) {
      const [[ax, ay], [bx, by]] = pair.map((p) => where.get(p));
      root.append(svg("line", { x1: ax, y1: ay, x2: bx, y2: by, class: "pair" }));
    }
  }
  for (const p of data.points) {
    const [x, y] = where.get(p);
    const colour = p.sample.split("-")[0];
    const g = svg("g", { class: "point", tabindex: "0", role: "button", "data-kind": p.kind, "data-sample": p.sample,
      "aria-label": `${p.kind} of “${captions[p.sample]}”: decode it` });
    const mark = p.kind === "video"
      ? svg("circle", { cx: x, cy: y, r: 11, fill: colour, class: "mark", stroke: "#333", "stroke-width": 1 })
      : svg("rect", { x: x - 9, y: y - 9, width: 18, height: 18, fill: colour, class: "mark", stroke: "#333",
          "stroke-width": 1, transform: `rotate(45 ${x} ${y})` });
    const title = svg("title", {});
    title.textContent = `${p.kind}: ${captions[p.sample]}`;
    g.append(mark, title);
    g.addEventListener("click", () => decodePoint(p, captions[p.sample]));
    g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); decodePoint(p, captions[p.sample]); } });
    root.append(g);
  }
  $("map").replaceChildren(root);
  const [ex, ey] = data.explained.map((v) => Math.round(v * 100));
  $("map-axes").textContent = `Horizontal axis: ${ex}% of the variance; vertical: ${ey}%.`;
}

async function decodePoint(point, caption) {
  showError("error-map", null);
  try {
    const sentence = await (await postJson("/caption", { latent_id: point.latent_id })).json();
    const videoPath = point.kind === "video" ? "/reconstruct" : "/sentence-to-video";
    $("map-point-title").textContent = `The ${point.kind} of “${caption}”`;
    $("map-caption").textContent = sentence.caption;
    $("map-result").hidden = false;
    await showGif($("map-video"), await postJson(videoPath, { latent_id: point.latent_id, }));
  } catch (err) {
    if (err.status === 404) loadSamples(); // the SLR expired from the cache: encode the samples again
    showError("error-map", err);
  }
}

async function loadSamples() {
  try {
    const data = await (await call("/samples")).json();
    $("sample-list").replaceChildren(...data.samples.map(sampleButton));
    drawMap(data);
  } catch (err) {
    showError("error-map", err);
  }
}

async function loadModel() {
  try {
    const m = await (await call("/models")).json();
    $("model-info").textContent = `Model ${m.version}: ${m.frames} frames of ${m.width}×${m.height}, sentences of at most ${m.max_words} words.`;
  } catch (err) {
    $("model-info").textContent = `(${err.message})`;
  }
}

$("api-key").value = localStorage.getItem("slr-api-key") || "";
$("api-key").addEventListener("change", () => { localStorage.setItem("slr-api-key", $("api-key").value); loadModel(); loadSamples(); });
setupVideo();
setupSentence();
loadModel();
loadSamples();
