// streamscribe live captions: microphone -> AudioWorklet (16 kHz PCM16) -> /v1/listen (Deepgram
// live protocol) or /v1/realtime (OpenAI, Together: protocols.js) -> captions. Plain JS, no build step. State lives in `caption` below; the DOM
// is a view of it. `window.streamscribe` exposes it to tests and to the console.
"use strict";

const $ = (sel) => document.querySelector(sel);
const RATE = 16000;

const caption = {
  state: "idle",          // idle | connecting | live | finishing | error
  finals: [],             // {start, end, text, language, latencyMs}
  partial: "",
  partials: 0,            // partial results received (a readout for tests and curious users)
  stableWords: 0,         // leading words of the partial that will not change (server's LocalAgreement)
  suppressed: 0,          // finals the server flagged as likely hallucinations, not shown
  language: null,
  latencies: [],
  offset: 0,              // seconds of audio from earlier sessions (keeps times monotonic)
  sentSamples: 0,
  metadata: null,
  error: null,
};
window.streamscribe = caption;

let session = null;       // {ws, media, ctx, node, startedAt, closing}

// ---------- time formatting and transcript export ----------

function clock(seconds, sep = ".", hours = true) {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
  const frac = String(ms % 1000).padStart(3, "0");
  const mm = String(m).padStart(2, "0"), ss = String(s).padStart(2, "0");
  return (hours || h ? String(h).padStart(2, "0") + ":" : "") + `${mm}:${ss}${sep}${frac}`;
}

function shortClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`;
}

const exporters = {
  txt: (finals) => finals.map((f) => `[${shortClock(f.start)}] ${f.text}`).join("\n") + "\n",
  srt: (finals) => finals.map((f, i) =>
    `${i + 1}\n${clock(f.start, ",")} --> ${clock(f.end, ",")}\n${f.text}\n`).join("\n"),
  vtt: (finals) => "WEBVTT\n\n" + finals.map((f) =>
    `${clock(f.start)} --> ${clock(f.end)}\n${f.text}\n`).join("\n"),
};
window.streamscribeExport = exporters;

function download(format) {
  const body = exporters[format](caption.finals);
  const type = format === "vtt" ? "text/vtt" : format === "srt" ? "application/x-subrip" : "text/plain";
  const url = URL.createObjectURL(new Blob([body], { type: type + ";charset=utf-8" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = `transcript-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.${format}`;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// ---------- view ----------

function nearBottom(el) {
  return el.scrollHeight - el.scrollTop - el.clientHeight < 80;
}

function render() {
  const main = $("#transcript");
  const stick = nearBottom(main);
  document.body.classList.toggle("streaming", !!session);
  $("#state").textContent = caption.state;
  $("#state").dataset.state = caption.state;
  $("#toggle").textContent = session ? (caption.state === "finishing" ? "Finishing…" : "Stop") : "Start";
  $("#toggle").setAttribute("aria-pressed", session ? "true" : "false");
  $("#toggle").disabled = caption.state === "finishing" || caption.state === "connecting";
  $("#model").disabled = $("#language").disabled = $("#protocol").disabled = $("#file").disabled = !!session;
  $("#file-button").classList.toggle("disabled", !!session);
  $("#source").textContent = session && session.file ? `file ${session.file}` : (session ? "microphone" : "");
  $("#lang").textContent = caption.language || "–";
  const lat = caption.latencies;
  if (lat.length) {
    const sorted = [...lat].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    $("#latency").textContent = `${Math.round(lat[lat.length - 1])} ms (median ${Math.round(median)} ms)`;
  } else {
    $("#latency").textContent = "–";
  }
  $("#error").textContent = caption.error || "";
  $(".placeholder").hidden = caption.finals.length > 0 || !!caption.partial || !!session;
  // the partial: words the server will not change, then the still-tentative tail (lighter)
  const words = caption.partial ? caption.partial.split(/\s+/) : [];
  const stable = words.slice(0, caption.stableWords).join(" ");
  const tail = words.slice(caption.stableWords).join(" ");
  $("#partial-stable").textContent = stable;
  $("#partial-tail").textContent = (stable && tail ? " " : "") + tail;
  for (const b of document.querySelectorAll(".downloads button")) b.disabled = caption.finals.length === 0;
  if (stick) main.scrollTop = main.scrollHeight;
}

function appendFinal(f) {
  const main = $("#transcript");
  const stick = nearBottom(main);
  const p = document.createElement("p");
  p.className = "final";
  const t = document.createElement("time");
  t.textContent = shortClock(f.start);
  t.title = `${clock(f.start)} – ${clock(f.end)}`;
  const span = document.createElement("span");
  span.className = "text";
  span.textContent = f.text;
  if (f.language) {
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = f.language + (f.latencyMs != null ? ` · ${Math.round(f.latencyMs)} ms` : "");
    span.appendChild(meta);
  }
  p.append(t, span);
  $("#finals").appendChild(p);
  if (stick) main.scrollTop = main.scrollHeight;
}

// ---------- server messages (normalized by protocols.js) ----------

function onMessage(event) {
  let msg;
  try { msg = JSON.parse(event.data); } catch { return; }
  if (!session) return;
  for (const e of session.protocol.translate(msg, session.state)) apply(e);
  render();
}

function apply(e) {
  if (e.kind === "partial" || e.kind === "final") {
    if (e.language) caption.language = e.language;
  }
  if (e.kind === "final") {
    caption.partial = "";
    caption.stableWords = 0;
    const h = e.hallucination || {};
    if (e.text && (h.likely || h.suppressed_text)) {
      caption.suppressed += 1;      // likely not speech ("Thank you." on noise): not committed
    } else if (e.text) {
      const start = caption.offset + e.start;
      const end = start + e.duration;
      let latencyMs = e.latencyMs;
      if (latencyMs == null && session && session.startedAt) {
        // measured: arrival time minus the wall time at which the utterance's audio ended
        latencyMs = performance.now() - (session.startedAt + (e.start + e.duration) * 1000);
      }
      const f = { start, end, text: e.text, language: e.language, latencyMs };
      caption.finals.push(f);
      if (latencyMs != null && latencyMs >= 0) caption.latencies.push(latencyMs);
      appendFinal(f);
    }
  } else if (e.kind === "partial") {
    caption.partial = e.text;
    caption.stableWords = e.stableWords;
    if (e.text) caption.partials += 1;
  } else if (e.kind === "metadata") {
    caption.metadata = e.message;
  } else if (e.kind === "clear") {
    caption.partial = "";
  } else if (e.kind === "error") {
    caption.error = e.message;
  }
}

// ---------- capture and streaming ----------

function openSocket(url, token) {
  // Browsers cannot set headers on a WebSocket: the key goes in the `token` subprotocol,
  // as Deepgram's JS SDK does.
  return new Promise((resolve, reject) => {
    const ws = token ? new WebSocket(url, ["token", token]) : new WebSocket(url);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error(token ? "connection refused (check the API key)" :
      "connection refused (an API key may be required)"));
  });
}

async function start(file = null) {
  // `file`: a File to caption (played through the same worklet at its own pace); else the mic
  caption.error = null;
  caption.state = "connecting";
  session = { closing: false, file: file ? file.name : null };
  render();
  try {
    const token = $("#token").value.trim();
    if (token) localStorage.setItem("streamscribe-token", token);
    const ctx = new AudioContext({ latencyHint: "interactive" });
    session.ctx = ctx;
    let source;
    if (file) {
      let buffer;
      try {
        buffer = await ctx.decodeAudioData(await file.arrayBuffer());
      } catch {
        throw new Error(`cannot decode ${file.name}: not an audio format this browser reads`);
      }
      source = ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(ctx.destination);              // you hear what is being captioned
      source.onended = () => stop();                 // the end of the file ends the stream
    } else {
      session.media = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      });
      source = ctx.createMediaStreamSource(session.media);
    }
    const choice = { rate: RATE, language: $("#language").value, model: $("#model").value };
    session.protocol = window.streamscribeProtocols[$("#protocol").value];
    session.state = session.protocol.start(choice);
    const ws = await openSocket(session.protocol.url(choice), token);
    session.ws = ws;
    ws.onmessage = onMessage;
    if (session.state.opening) ws.send(session.state.opening);
    ws.onclose = (e) => finished(e);
    await ctx.audioWorklet.addModule("/web/worklet.js");
    const node = new AudioWorkletNode(ctx, "pcm-encoder", { processorOptions: { chunkMs: 100 } });
    session.node = node;
    // a silent path to the destination keeps the worklet pulled in every browser
    const mute = ctx.createGain();
    mute.gain.value = 0;
    source.connect(node).connect(mute).connect(ctx.destination);
    node.port.onmessage = (e) => {
      const { pcm, peak } = e.data;
      $("#level").style.width = `${Math.min(100, Math.round(peak * 140))}%`;
      if (!session || !session.ws || session.ws.readyState !== WebSocket.OPEN) return;
      if (!session.startedAt) session.startedAt = performance.now();
      session.ws.send(session.state.audio(pcm));
      caption.sentSamples += pcm.byteLength / 2;
    };
    if (ctx.state === "suspended") await ctx.resume();
    if (file) source.start();
    caption.state = "live";
  } catch (err) {
    caption.error = err && err.message ? err.message : String(err);
    teardownAudio();
    if (session && session.ws) session.ws.close();
    session = null;
    caption.state = "error";
  }
  render();
}

function teardownAudio() {
  if (!session) return;
  if (session.node) { session.node.port.postMessage("flush"); session.node.disconnect(); }
  if (session.media) session.media.getTracks().forEach((t) => t.stop());
  if (session.ctx) session.ctx.close();
  $("#level").style.width = "0";
}

function stop() {
  if (!session || session.closing) return;
  session.closing = true;
  caption.state = "finishing";
  teardownAudio();
  const { ws, protocol, state } = session;
  // let the worklet's last chunk reach the socket, then ask the server to flush (Deepgram
  // then closes by itself; the realtime protocols are closed here once they settle)
  setTimeout(() => {
    if (ws.readyState === WebSocket.OPEN) ws.send(state.finish());
    const sent = caption.sentSamples;
    if (protocol.settled) {
      const poll = setInterval(() => {
        if (ws.readyState !== WebSocket.OPEN) { clearInterval(poll); return; }
        if (!protocol.settled(state)) return;
        clearInterval(poll);
        caption.metadata = { type: "Metadata", request_id: state.sessionId || "", duration: sent / RATE };
        ws.close(1000);
      }, 250);
    }
    setTimeout(() => { if (ws.readyState !== WebSocket.CLOSED) ws.close(); }, 15000);
  }, 150);
  render();
}

function finished(event) {
  if (!session) return;
  const wasClosing = session.closing;
  teardownAudio();
  session = null;
  caption.partial = "";
  caption.offset += caption.sentSamples / RATE;
  caption.sentSamples = 0;
  if (!wasClosing && event && event.code !== 1000) {
    caption.error = `connection closed (${event.code}${event.reason ? ": " + event.reason : ""})`;
    caption.state = "error";
  } else {
    caption.state = "idle";
  }
  render();
}

// ---------- set-up ----------

async function loadConfig() {
  try {
    const r = await fetch("/web/config.json");
    if (!r.ok) return;
    const config = await r.json();
    const select = $("#model");
    for (const name of config.models || []) {
      const o = document.createElement("option");
      o.value = o.textContent = name;
      select.appendChild(o);
    }
    if (config.default_model) select.options[0].textContent = `${config.default_model} (default)`;
    $("#token-field").hidden = !config.auth_required;
  } catch { /* the page still works with the server defaults */ }
}

function init() {
  const params = new URLSearchParams(location.search);
  $("#token").value = params.get("token") || localStorage.getItem("streamscribe-token") || "";
  if (params.get("language")) $("#language").value = params.get("language");
  if (params.get("protocol")) $("#protocol").value = params.get("protocol");
  $("#toggle").addEventListener("click", () => (session ? stop() : start()));
  $("#file").addEventListener("change", (e) => {
    const file = e.target.files && e.target.files[0];
    e.target.value = "";                            // choosing the same file again still fires
    if (file && !session) start(file);
  });
  for (const b of document.querySelectorAll(".downloads button")) {
    b.addEventListener("click", () => download(b.dataset.format));
  }
  loadConfig().then(() => {
    if (params.get("model")) $("#model").value = params.get("model");
    if (params.get("token")) $("#token-field").hidden = false;
  });
  render();
}

init();
