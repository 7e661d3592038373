// The annotation page: one frame at a time; a click adds a Gaussian to the heat map at once,
// and every change is sent to the server at once (PUT replaces the frame's clicks), so a
// closed tab loses nothing. Plain JS, no frameworks: the page must work offline.
// When the server has a saliency predictor, its map is shown in blue beside the person's
// red-yellow heat, and Accept turns it into clicks; nothing predicted is stored until then.
"use strict";

const MIN_DISPLAY_PX = 256; // the frame is shown at least this large, scaled by an integer
const HEAT_ALPHA = 0.6; // as saliency.overlay: red-yellow heat, blended at 0.6 x map value
const RETRY_MS = 2000;
const POLL_MS = 1000; // how often the state is asked for while a refit runs
const REMOVE_PX = 10; // a right- or shift-click this close to a point (display px) removes it

const ui = {};
const app = {
  H: 0,
  W: 0,
  sigma: 0,
  maxClicks: 100,
  frames: [], // per position: {frame, episode, step} from /api/state
  order: [], // positions in the order the page offers them (the server's walk order)
  counts: [], // per position: number of clicks (a frame is done when > 0)
  clicks: [], // per position: [{x, y, sigma}] in image pixels once loaded, else null
  history: [], // per position: earlier click lists, for undo
  images: [], // per position: Promise<HTMLImageElement>
  current: 0,
  shown: -1, // the position whose image and clicks are on the canvas
  showHeat: true,
  heat: document.createElement("canvas"), // the map at image resolution, scaled up by draw()
  predictor: { available: false, version: 0, state: "none" }, // the server's status
  showPrediction: true,
  predictions: new Map(), // "version:position" -> Promise<{heat: canvas, clicks: [{x, y}]}>
  polling: false,
};
const saver = { pending: new Map(), busy: false, error: null };

// ---------------------------------------------------------------------- server
async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body = null;
  try {
    body = await response.json();
  } catch {
    // not JSON: the status line says enough
  }
  if (!response.ok) {
    const error = new Error((body && body.error) || `${response.status} ${response.statusText}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function setStatus(state, text) {
  document.body.dataset.saveState = state;
  ui.status.textContent = text;
}

function queueSave(k) {
  // Only the newest list of a frame matters: PUT replaces, so older pending ones are dropped.
  saver.pending.set(k, app.clicks[k].map((c) => ({ x: c.x, y: c.y })));
  pump();
}

async function pump() {
  if (saver.busy) return;
  saver.busy = true;
  while (saver.pending.size) {
    const [k, clicks] = saver.pending.entries().next().value;
    saver.pending.delete(k);
    setStatus("saving", "saving…");
    try {
      const record = await api(`/api/frame/${k}/clicks`, {
        method: "PUT",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ clicks }),
        keepalive: true, // finish the save even if the tab is closing
      });
      if (!saver.pending.has(k)) app.counts[k] = record.clicks.length;
      saver.error = null;
      onPredictor(record.predictor);
    } catch (error) {
      if (error.status && error.status < 500) {
        // Refused: sending it again would not help. Show what the server holds instead.
        saver.error = `frame ${k + 1} not saved: ${error.message}`;
        await reloadClicks(k);
      } else {
        // Server unreachable or failing: keep the newest clicks and try again shortly.
        if (!saver.pending.has(k)) saver.pending.set(k, clicks);
        setStatus("error", `not saved (${error.message}); retrying…`);
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  }
  saver.busy = false;
  if (saver.error) setStatus("error", saver.error);
  else setStatus("saved", "all changes saved");
  updateProgress();
}

async function reloadClicks(k) {
  try {
    const record = await api(`/api/frame/${k}/clicks`);
    app.clicks[k] = record.clicks.map((c) => ({ x: c.x, y: c.y, sigma: c.sigma }));
    app.counts[k] = app.clicks[k].length;
    app.history[k] = [];
    if (k === app.shown) draw();
  } catch {
    // the error already shown says the frame is not saved
  }
}

// ---------------------------------------------------------------------- frames
function image(k) {
  if (!app.images[k]) {
    app.images[k] = new Promise((resolve, reject) => {
      const img = new Image();
      img.onload = () => resolve(img);
      img.onerror = () => {
        app.images[k] = null; // try again next time
        reject(new Error(`the image of frame ${k + 1} did not load`));
      };
      img.src = `/api/frame/${k}/image.png`;
    });
  }
  return app.images[k];
}

async function loadClicks(k) {
  if (app.clicks[k] !== null) return;
  const record = await api(`/api/frame/${k}/clicks`);
  if (app.clicks[k] === null) {
    app.clicks[k] = record.clicks.map((c) => ({ x: c.x, y: c.y, sigma: c.sigma }));
    app.counts[k] = app.clicks[k].length;
  }
}

async function go(k) {
  if (!(k >= 0 && k < app.frames.length)) return;
  app.current = k;
  app.shown = -1; // no clicks until this frame is on the canvas
  updateProgress();
  try {
    const [img] = await Promise.all([image(k), loadClicks(k)]);
    if (app.current !== k) return; // the person moved on meanwhile
    app.img = img;
    app.shown = k;
    app.predicted = null; // until this frame's prediction has loaded
    draw();
    document.body.dataset.frame = String(k);
    showPrediction(k);
  } catch (error) {
    setStatus("error", error.message);
  }
  const next = app.order[app.order.indexOf(k) + 1];
  if (next !== undefined) image(next).catch(() => {}); // next is the usual way
}

function step(delta) {
  // Previous and next in the page's order (the server's suggestion), not by position.
  return go(app.order[app.order.indexOf(app.current) + delta]);
}

function nextUnannotated() {
  const n = app.order.length;
  const at = app.order.indexOf(app.current);
  for (let i = 1; i <= n; i++) {
    const k = app.order[(at + i) % n];
    if (!app.counts[k]) return go(k);
  }
}

// ---------------------------------------------------------------------- the predictor
function onPredictor(status) {
  if (!status) return;
  const changed = status.version !== app.predictor.version;
  app.predictor = status;
  updatePredictorUi();
  if (changed) {
    app.predictions.clear();
    refreshOrder(); // a new predictor may be least sure about other frames
    if (app.shown >= 0) showPrediction(app.shown);
  }
  if (status.state === "fitting" && !app.polling) poll();
}

async function poll() {
  app.polling = true;
  try {
    while (app.predictor.state === "fitting") {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      try {
        onPredictor((await api("/api/state")).predictor);
      } catch {
        // the server is away for a moment: ask again
      }
    }
  } finally {
    app.polling = false;
  }
}

async function refreshOrder() {
  let state;
  try {
    state = await api("/api/state");
  } catch {
    return;
  }
  // What the person has walked through stays; the rest follows the server's newest order.
  const walked = app.order.slice(0, app.order.indexOf(app.current) + 1);
  app.order = walked.concat(state.order.filter((k) => !walked.includes(k)));
  buildDots();
  updateProgress();
}

function prediction(k) {
  const key = `${app.predictor.version}:${k}`;
  if (!app.predictions.has(key)) {
    const load = Promise.all([
      new Promise((resolve, reject) => {
        const img = new Image();
        img.onload = () => resolve(img);
        img.onerror = () => reject(new Error(`the prediction of frame ${k + 1} did not load`));
        img.src = `/api/frame/${k}/prediction.png?v=${app.predictor.version}`;
      }),
      api(`/api/frame/${k}/suggested_clicks`),
    ]).then(([img, suggested]) => ({ heat: predictedHeat(img), clicks: suggested.clicks }));
    load.catch(() => app.predictions.delete(key)); // try again next time
    app.predictions.set(key, load);
  }
  return app.predictions.get(key);
}

function predictedHeat(img) {
  // The grey PNG is the map (0..255); drawn in blue so it never reads as the person's heat.
  const canvas = document.createElement("canvas");
  canvas.width = app.W;
  canvas.height = app.H;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const pixels = ctx.getImageData(0, 0, app.W, app.H);
  for (let p = 0; p < app.W * app.H; p++) {
    const value = pixels.data[4 * p] / 255;
    pixels.data[4 * p] = 0;
    pixels.data[4 * p + 1] = Math.round(160 + 95 * value);
    pixels.data[4 * p + 2] = 255;
    pixels.data[4 * p + 3] = Math.round(255 * HEAT_ALPHA * value);
  }
  ctx.putImageData(pixels, 0, 0);
  return canvas;
}

async function showPrediction(k) {
  app.predicted = null;
  document.body.dataset.prediction = app.predictor.available ? "loading" : "none";
  updatePredictorUi();
  if (!app.predictor.available) return;
  try {
    const shown = await prediction(k);
    if (app.shown !== k) return; // the person moved on meanwhile
    app.predicted = shown;
    draw();
    document.body.dataset.prediction = app.showPrediction ? "shown" : "hidden";
    document.body.dataset.predictionFrame = String(k);
  } catch (error) {
    document.body.dataset.prediction = "none";
    setStatus("error", error.message);
  }
  updatePredictorUi();
}

function togglePrediction() {
  app.showPrediction = !app.showPrediction;
  ui.prediction.setAttribute("aria-pressed", String(app.showPrediction));
  if (app.predicted) document.body.dataset.prediction = app.showPrediction ? "shown" : "hidden";
  draw();
}

function accept() {
  // The predicted points join the frame's clicks (a person's clicks are never dropped);
  // the normal save then stores them, and Undo takes them back.
  if (!app.predicted || app.shown < 0) return;
  change((clicks) => {
    const have = new Set(clicks.map((c) => `${c.x},${c.y}`));
    const added = app.predicted.clicks
      .filter((c) => !have.has(`${c.x},${c.y}`))
      .map((c) => ({ x: c.x, y: c.y, sigma: app.sigma }));
    if (!added.length) return clicks;
    return [...clicks, ...added].slice(0, app.maxClicks);
  });
}

function updatePredictorUi() {
  const p = app.predictor;
  ui.prediction.disabled = !p.available;
  ui.accept.disabled = !app.predicted || !app.predicted.clicks.length;
  let text = "no predictor";
  if (p.available) {
    const frames = p.frames ? ` on ${p.frames} frames` : "";
    text = `predictor ${p.version}${frames}`;
    if (app.predicted && !app.predicted.clicks.length) text += " · no confident point here";
  }
  if (p.state === "fitting") text += " · refitting…";
  if (p.error) text += ` · last refit failed: ${p.error}`;
  ui.predictorStatus.textContent = text;
  document.body.dataset.predictorVersion = String(p.version);
}

// ---------------------------------------------------------------------- editing
function change(update) {
  const k = app.shown;
  if (k < 0) return;
  const before = app.clicks[k];
  const after = update(before);
  if (after === before) return;
  app.history[k].push(before);
  app.clicks[k] = after;
  app.counts[k] = after.length;
  draw();
  updateProgress();
  queueSave(k);
}

function addClick(event) {
  if (app.shown < 0) return;
  if (event.button === 2 || (event.button === 0 && event.shiftKey)) {
    event.preventDefault();
    removeClick(event);
    return;
  }
  if (event.button !== 0) return;
  event.preventDefault();
  if (app.clicks[app.shown].length >= app.maxClicks) {
    setStatus("error", `at most ${app.maxClicks} clicks on one frame`);
    return;
  }
  // The bounding box is the displayed size, whatever CSS, zoom or a narrow window made it.
  const rect = ui.canvas.getBoundingClientRect();
  const x = toImage((event.clientX - rect.left) / rect.width, app.W);
  const y = toImage((event.clientY - rect.top) / rect.height, app.H);
  change((clicks) => [...clicks, { x, y, sigma: app.sigma }]);
}

function removeClick(event) {
  // The point nearest the pointer goes, if it is within REMOVE_PX on the screen.
  const rect = ui.canvas.getBoundingClientRect();
  const px = event.clientX - rect.left;
  const py = event.clientY - rect.top;
  let best = -1;
  let bestDistance = REMOVE_PX;
  app.clicks[app.shown].forEach((click, i) => {
    const distance = Math.hypot(
      (click.x / app.W) * rect.width - px,
      (click.y / app.H) * rect.height - py,
    );
    if (distance <= bestDistance) [best, bestDistance] = [i, distance];
  });
  if (best >= 0) change((clicks) => clicks.filter((_, i) => i !== best));
}

function toImage(fraction, pixels) {
  // Image pixel coordinate in [0, pixels), to a thousandth of a pixel.
  const value = Math.round(fraction * pixels * 1000) / 1000;
  return Math.min(Math.max(value, 0), pixels - 0.001);
}

function undo() {
  const k = app.shown;
  if (k < 0) return;
  const clicks = app.clicks[k];
  if (app.history[k].length) {
    app.clicks[k] = app.history[k].pop();
  } else if (clicks.length) {
    app.clicks[k] = clicks.slice(0, -1); // clicks from an earlier visit: drop the newest
  } else {
    return;
  }
  app.counts[k] = app.clicks[k].length;
  draw();
  updateProgress();
  queueSave(k);
}

function clear() {
  change((clicks) => (clicks.length ? [] : clicks));
}

function toggleHeat() {
  app.showHeat = !app.showHeat;
  ui.heat.setAttribute("aria-pressed", String(app.showHeat));
  draw();
}

// ---------------------------------------------------------------------- drawing
// The same map as saliency.maps.clicks_to_map: a Gaussian per click evaluated at pixel
// centres (j + 0.5, i + 0.5), summed, normalised to peak 1. Returns Float64Array (H * W).
function saliencyMap(clicks, H, W) {
  const out = new Float64Array(H * W);
  const gx = new Float64Array(W);
  const gy = new Float64Array(H);
  for (const click of clicks) {
    const twoSigma2 = 2 * click.sigma * click.sigma;
    for (let j = 0; j < W; j++) gx[j] = Math.exp(-((j + 0.5 - click.x) ** 2) / twoSigma2);
    for (let i = 0; i < H; i++) gy[i] = Math.exp(-((i + 0.5 - click.y) ** 2) / twoSigma2);
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) out[i * W + j] += gy[i] * gx[j];
    }
  }
  let peak = 0;
  for (const value of out) peak = Math.max(peak, value);
  if (peak > 0) for (let p = 0; p < out.length; p++) out[p] /= peak;
  return out;
}

function layout() {
  const { H, W } = app;
  const minScale = Math.ceil(MIN_DISPLAY_PX / Math.min(H, W));
  const beside = window.innerWidth >= 900 ? 384 : 0; // the side panel, when it fits beside
  const top = ui.canvas.getBoundingClientRect().top + window.scrollY;
  const fit = Math.floor(
    Math.min((window.innerWidth - 40 - beside) / W, (window.innerHeight - top - 72) / H),
  );
  const scale = Math.max(minScale, fit);
  const dpr = window.devicePixelRatio || 1;
  ui.canvas.width = Math.round(W * scale * dpr);
  ui.canvas.height = Math.round(H * scale * dpr);
  ui.canvas.style.width = `${W * scale}px`;
  draw();
}

function draw() {
  const canvas = ui.canvas;
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false; // crisp pixels: the frame is what the agent sees
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (app.shown < 0 || !app.img) return;
  ctx.drawImage(app.img, 0, 0, canvas.width, canvas.height);
  const predicted = app.showPrediction && app.predicted;
  if (predicted) ctx.drawImage(app.predicted.heat, 0, 0, canvas.width, canvas.height);
  const clicks = app.clicks[app.shown];
  if (app.showHeat && clicks.length) {
    const map = saliencyMap(clicks, app.H, app.W);
    const heatCtx = app.heat.getContext("2d");
    const pixels = heatCtx.createImageData(app.W, app.H);
    for (let p = 0; p < map.length; p++) {
      pixels.data[4 * p] = 255;
      pixels.data[4 * p + 1] = Math.round(255 * map[p]);
      pixels.data[4 * p + 2] = 0;
      pixels.data[4 * p + 3] = Math.round(255 * HEAT_ALPHA * map[p]);
    }
    heatCtx.putImageData(pixels, 0, 0);
    ctx.drawImage(app.heat, 0, 0, canvas.width, canvas.height);
  }
  // Mark each click, the newest in the accent colour, so a stray one is easy to spot.
  const dpr = canvas.width / parseFloat(canvas.style.width || canvas.width);
  clicks.forEach((click, i) => {
    const cx = (click.x / app.W) * canvas.width;
    const cy = (click.y / app.H) * canvas.height;
    ctx.beginPath();
    ctx.arc(cx, cy, 4.5 * dpr, 0, 2 * Math.PI);
    ctx.lineWidth = 3 * dpr;
    ctx.strokeStyle = "rgba(0, 0, 0, 0.7)";
    ctx.stroke();
    ctx.lineWidth = 1.5 * dpr;
    ctx.strokeStyle = i === clicks.length - 1 ? "#f5a524" : "#ffffff";
    ctx.stroke();
  });
  // The points Accept would add: dashed, so they never pass for stored clicks.
  if (!predicted) return;
  ctx.setLineDash([3 * dpr, 3 * dpr]);
  for (const click of app.predicted.clicks) {
    ctx.beginPath();
    ctx.arc((click.x / app.W) * canvas.width, (click.y / app.H) * canvas.height, 6 * dpr, 0, 7);
    ctx.lineWidth = 1.5 * dpr;
    ctx.strokeStyle = "#4fd1ff";
    ctx.stroke();
  }
  ctx.setLineDash([]);
}

function updateProgress() {
  const n = app.frames.length;
  const k = app.current;
  const done = app.counts.filter((count) => count > 0).length;
  ui.counter.textContent = `${done}/${n}`;
  document.title = `${done}/${n} · saliency-rl annotate`;
  const info = app.frames[k];
  const at = app.order.indexOf(k);
  ui.position.textContent = `frame ${at + 1} of ${n}`;
  ui.origin.textContent = `#${info.frame} · episode ${info.episode}, step ${info.step}`;
  const count = app.counts[k];
  ui.clickCount.textContent = count === 1 ? "1 click" : `${count} clicks`;
  ui.prev.disabled = at === 0;
  ui.next.disabled = at === n - 1;
  Array.from(ui.dots.children).forEach((dot, i) => {
    dot.classList.toggle("done", app.counts[app.order[i]] > 0);
    dot.classList.toggle("current", app.order[i] === k);
  });
}

function buildDots() {
  // One dot per frame, in the page's order; each names its frame's place in that order.
  ui.dots.replaceChildren();
  app.order.forEach((k, i) => {
    const dot = document.createElement("li");
    dot.textContent = String(i + 1);
    dot.title = `frame ${i + 1}`;
    dot.dataset.position = String(k);
    dot.addEventListener("click", () => go(k));
    ui.dots.appendChild(dot);
  });
}

// ---------------------------------------------------------------------- start
function onKey(event) {
  if (event.altKey) return;
  const key = event.key.toLowerCase();
  if (event.ctrlKey || event.metaKey) {
    if (key === "z" && !event.shiftKey) {
      event.preventDefault();
      undo();
    }
    return; // leave the browser's own shortcuts alone
  }
  const actions = {
    z: undo,
    c: clear,
    h: toggleHeat,
    p: togglePrediction,
    y: accept,
    n: nextUnannotated,
    a: () => step(-1),
    arrowleft: () => step(-1),
    d: () => step(1),
    arrowright: () => step(1),
  };
  if (actions[key]) {
    event.preventDefault();
    actions[key]();
  }
}

async function init() {
  for (const id of ["canvas", "status", "counter", "dots", "position", "origin", "dataset"]) {
    ui[id] = document.getElementById(id);
  }
  Object.assign(ui, {
    clickCount: document.getElementById("click-count"),
    annotator: document.getElementById("annotator"),
    prev: document.getElementById("prev"),
    next: document.getElementById("next"),
    undo: document.getElementById("undo"),
    clear: document.getElementById("clear"),
    heat: document.getElementById("heat"),
    prediction: document.getElementById("prediction"),
    accept: document.getElementById("accept"),
    predictorStatus: document.getElementById("predictor-status"),
  });
  let state;
  try {
    state = await api("/api/state");
  } catch (error) {
    setStatus("error", `cannot reach the annotation server: ${error.message}`);
    return;
  }
  [app.H, app.W] = state.image_size;
  app.sigma = state.sigma;
  app.maxClicks = state.max_clicks;
  app.frames = state.frames;
  app.order = state.order;
  app.counts = state.frames.map((f) => f.clicks);
  app.clicks = state.frames.map(() => null);
  app.history = state.frames.map(() => []);
  app.heat.width = app.W;
  app.heat.height = app.H;
  ui.dataset.textContent = `${state.env_spec} · ${state.dataset} · ${app.W}×${app.H}`;
  ui.annotator.textContent = state.annotator;
  buildDots();
  app.predictor = state.predictor;
  updatePredictorUi();

  ui.canvas.addEventListener("pointerdown", addClick);
  ui.canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  ui.prev.addEventListener("click", () => step(-1));
  ui.next.addEventListener("click", () => step(1));
  ui.undo.addEventListener("click", undo);
  ui.clear.addEventListener("click", clear);
  ui.heat.addEventListener("click", toggleHeat);
  ui.prediction.addEventListener("click", togglePrediction);
  ui.accept.addEventListener("click", accept);
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", layout);
  window.addEventListener("beforeunload", (event) => {
    if (saver.busy || saver.pending.size) {
      event.preventDefault(); // a save is still on its way: ask before leaving
      event.returnValue = "";
    }
  });

  setStatus("saved", "all changes saved");
  layout();
  if (app.predictor.state === "fitting") poll();
  await go(state.resume);
}

init();
