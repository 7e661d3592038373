// The annotation page: one frame at a time; a click adds a Gaussian to the heat map at once,
// and every change is sent to the server at once (PUT replaces the frame's clicks), so a
// closed tab loses nothing. Plain JS, no frameworks: the page must work offline.
"use strict";

const MIN_DISPLAY_PX = 256; // the frame is shown at least this large, scaled by an integer
const HEAT_ALPHA = 0.6; // as saliency.overlay: red-yellow heat, blended at 0.6 x map value
const RETRY_MS = 2000;

const ui = {};
const app = {
  H: 0,
  W: 0,
  sigma: 0,
  maxClicks: 100,
  frames: [], // per position: {frame, episode, step} from /api/state
  counts: [], // per position: number of clicks (a frame is done when > 0)
  clicks: [], // per position: [{x, y, sigma}] in image pixels once loaded, else null
  history: [], // per position: earlier click lists, for undo
  images: [], // per position: Promise<HTMLImageElement>
  current: 0,
  shown: -1, // the position whose image and clicks are on the canvas
  showHeat: true,
  heat: document.createElement("canvas"), // the map at image resolution, scaled up by draw()
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
  if (k < 0 || k >= app.frames.length) return;
  app.current = k;
  app.shown = -1; // no clicks until this frame is on the canvas
  updateProgress();
  try {
    const [img] = await Promise.all([image(k), loadClicks(k)]);
    if (app.current !== k) return; // the person moved on meanwhile
    app.img = img;
    app.shown = k;
    draw();
    document.body.dataset.frame = String(k);
  } catch (error) {
    setStatus("error", error.message);
  }
  if (k + 1 < app.frames.length) image(k + 1).catch(() => {}); // next is the usual way
}

function nextUnannotated() {
  const n = app.frames.length;
  for (let step = 1; step <= n; step++) {
    const k = (app.current + step) % n;
    if (!app.counts[k]) return go(k);
  }
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
  if (event.button !== 0 || app.shown < 0) return;
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
}

function updateProgress() {
  const n = app.frames.length;
  const k = app.current;
  const done = app.counts.filter((count) => count > 0).length;
  ui.counter.textContent = `${done}/${n}`;
  document.title = `${done}/${n} · saliency-rl annotate`;
  const info = app.frames[k];
  ui.position.textContent = `frame ${k + 1} of ${n}`;
  ui.origin.textContent = `#${info.frame} · episode ${info.episode}, step ${info.step}`;
  const count = app.counts[k];
  ui.clickCount.textContent = count === 1 ? "1 click" : `${count} clicks`;
  ui.prev.disabled = k === 0;
  ui.next.disabled = k === n - 1;
  Array.from(ui.dots.children).forEach((dot, i) => {
    dot.classList.toggle("done", app.counts[i] > 0);
    dot.classList.toggle("current", i === k);
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
    n: nextUnannotated,
    a: () => go(app.current - 1),
    arrowleft: () => go(app.current - 1),
    d: () => go(app.current + 1),
    arrowright: () => go(app.current + 1),
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
  app.counts = state.frames.map((f) => f.clicks);
  app.clicks = state.frames.map(() => null);
  app.history = state.frames.map(() => []);
  app.heat.width = app.W;
  app.heat.height = app.H;
  ui.dataset.textContent = `${state.env_spec} · ${state.dataset} · ${app.W}×${app.H}`;
  ui.annotator.textContent = state.annotator;
  state.frames.forEach((_, i) => {
    const dot = document.createElement("li");
    dot.textContent = String(i + 1);
    dot.title = `frame ${i + 1}`;
    dot.addEventListener("click", () => go(i));
    ui.dots.appendChild(dot);
  });

  ui.canvas.addEventListener("pointerdown", addClick);
  ui.canvas.addEventListener("contextmenu", (event) => event.preventDefault());
  ui.prev.addEventListener("click", () => go(app.current - 1));
  ui.next.addEventListener("click", () => go(app.current + 1));
  ui.undo.addEventListener("click", undo);
  ui.clear.addEventListener("click", clear);
  ui.heat.addEventListener("click", toggleHeat);
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
  await go(state.resume);
}

init();
