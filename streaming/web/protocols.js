// The three streaming protocols the caption page can speak, each turning the server's
// messages into the page's own events:
//   {kind: "partial", text, stableWords, language}
//   {kind: "final", start, duration, text, language, latencyMs, hallucination}
//   {kind: "metadata", message} | {kind: "clear"} | {kind: "error", message}
// Deepgram: /v1/listen, binary PCM. OpenAI and Together: /v1/realtime, base64 PCM in
// input_audio_buffer.append (OpenAI carries 24 kHz, so the page's 16 kHz is resampled).
"use strict";

function base64(bytes) {
  let binary = "";
  const view = new Uint8Array(bytes);
  for (let i = 0; i < view.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, view.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

// 16 kHz -> 24 kHz by linear interpolation, carrying the last sample across chunks.
function upsampler() {
  let last = 0;
  let phase = 0;                    // position of the next output sample, in input samples
  return (buffer) => {
    const input = new Int16Array(buffer);
    const out = [];
    for (; phase < input.length; phase += 2 / 3) {
      const i = Math.floor(phase);
      const a = i === 0 ? last : input[i - 1];
      const b = input[i];
      out.push(Math.round(a + (b - a) * (phase - i)));
    }
    phase -= input.length;
    if (input.length) last = input[input.length - 1];
    return Int16Array.from(out).buffer;
  };
}

function wsUrl(path, params) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}?${new URLSearchParams(params)}`;
}

const deepgram = {
  url({ rate, language, model }) {
    const params = {
      encoding: "linear16", sample_rate: String(rate), channels: "1",
      interim_results: "true", vad_events: "true", utterance_end_ms: "1000", punctuate: "true",
    };
    if (language) params.language = language;
    if (model) params.model = model;
    return wsUrl("/v1/listen", params);
  },
  start() { return { audio: (pcm) => pcm, finish: () => JSON.stringify({ type: "CloseStream" }) }; },
  translate(msg) {
    if (msg.type === "Results") {
      const ch = msg.channel || {};
      const alt = (ch.alternatives || [])[0] || {};
      const text = (alt.transcript || "").trim();
      const language = msg.language || ch.detected_language || alt.language
        || (alt.languages || [])[0] || null;
      if (!msg.is_final) return [{ kind: "partial", text, stableWords: msg.stable_words || 0, language }];
      return [{ kind: "final", start: msg.start || 0, duration: msg.duration || 0, text, language,
                latencyMs: typeof msg.latency_ms === "number" ? msg.latency_ms : null,
                hallucination: msg.hallucination || {} }];
    }
    if (msg.type === "Metadata") return [{ kind: "metadata", message: msg }];
    if (msg.type === "UtteranceEnd") return [{ kind: "clear" }];
    if (msg.type === "Error" || msg.type === "Warning" || msg.err_code || msg.error) {
      return [{ kind: "error", message: msg.description || msg.message || msg.err_msg
                || JSON.stringify(msg.error || msg) }];
    }
    return [];
  },
};

// OpenAI's and Together's realtime protocols differ in the URL, the session message and
// whether a delta appends (OpenAI) or replaces (Together).
function realtime(dialect) {
  return {
    url({ language, model }) {
      if (dialect === "openai") return wsUrl("/v1/realtime", { intent: "transcription" });
      const params = { model: model || "openai/whisper-large-v3", input_audio_format: "pcm_s16le_16000" };
      if (language && language !== "multi") params.language = language;
      return wsUrl("/v1/realtime", params);
    },
    // Per session: how audio goes out, the opening session message, what Stop sends.
    start({ language, model }) {
      const resample = dialect === "openai" ? upsampler() : (pcm) => pcm;
      const transcription = {};
      if (model) transcription.model = model;
      if (language && language !== "multi") transcription.language = language;
      return {
        opening: dialect === "openai" ? JSON.stringify({ type: "session.update", session: {
          type: "transcription", audio: { input: { format: { type: "audio/pcm", rate: 24000 },
                                                   transcription } } } }) : null,
        audio: (pcm) => JSON.stringify({ type: "input_audio_buffer.append", audio: base64(resample(pcm)) }),
        finish: () => JSON.stringify({ type: "input_audio_buffer.commit" }),
        pending: new Set(),       // items announced and not yet completed
        texts: {},                // OpenAI: item id -> the deltas so far
        heardAt: 0,
      };
    },
    translate(msg, state) {
      state.heardAt = performance.now();
      const item = msg.item_id;
      switch (msg.type) {
        case "session.created":
          state.sessionId = (msg.session || {}).id || "";
          return [];
        case "input_audio_buffer.speech_started":
        case "input_audio_buffer.committed":
          state.pending.add(item);
          return [];
        case "conversation.item.input_audio_transcription.delta": {
          const text = dialect === "openai" ? (state.texts[item] || "") + (msg.delta || "") : (msg.delta || "");
          state.texts[item] = text;
          const words = text.trim() ? text.trim().split(/\s+/).length : 0;
          // OpenAI's deltas are only confirmed words; Together's may still change.
          return [{ kind: "partial", text: text.trim(), stableWords: dialect === "openai" ? words : 0,
                    language: null }];
        }
        case "conversation.item.input_audio_transcription.completed": {
          state.pending.delete(item);
          delete state.texts[item];
          const start = (msg.start_ms || 0) / 1000;
          return [{ kind: "final", start, duration: Math.max(0, (msg.end_ms || 0) / 1000 - start),
                    text: (msg.transcript || "").trim(), language: msg.language || null,
                    latencyMs: null, hallucination: {} }];
        }
        case "conversation.item.input_audio_transcription.failed":
          state.pending.delete(item);
          return [{ kind: "error", message: (msg.error || {}).message || "transcription failed" }];
        case "error":
          return [{ kind: "error", message: (msg.error || {}).message || JSON.stringify(msg) }];
        default:
          return [];
      }
    },
    // Neither protocol has an end of stream: after Stop's commit, the stream is over once
    // every announced item has completed and the server has been quiet for a second.
    settled(state) { return state.pending.size === 0 && performance.now() - state.heardAt > 1000; },
  };
}

window.streamscribeProtocols = { deepgram, openai: realtime("openai"), together: realtime("together") };
