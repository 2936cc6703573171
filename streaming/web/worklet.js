// AudioWorklet: microphone samples (any rate) -> 16 kHz mono PCM16 chunks posted to the page.
//
// Resampling: a short windowed-sinc low-pass (cutoff just under 8 kHz) applied at the
// fractional source position of each output sample. State carries across render quanta, so
// the stream has no seams. `sampleRate` is the AudioWorkletGlobalScope's context rate.

const TARGET_RATE = 16000;
const HALF_TAPS = 8;          // filter support: +-8 source samples around each output sample

class PcmEncoder extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.chunkSamples = Math.round(TARGET_RATE * (opts.chunkMs || 100) / 1000);
    this.step = sampleRate / TARGET_RATE;                 // source samples per output sample
    this.cutoff = Math.min(1, 1 / this.step) * 0.95;      // normalized to the source Nyquist
    this.history = new Float32Array(0);                   // source samples not yet consumed
    this.position = HALF_TAPS;                            // next output position in `history`
    this.out = new Int16Array(this.chunkSamples);
    this.filled = 0;
    this.peak = 0;
    this.port.onmessage = (e) => { if (e.data === "flush") this.flush(); };
  }

  kernel(x) {
    // windowed sinc (Blackman), x in source samples
    if (Math.abs(x) >= HALF_TAPS) return 0;
    const c = this.cutoff;
    const s = x === 0 ? c : Math.sin(Math.PI * c * x) / (Math.PI * x);
    const w = 0.42 + 0.5 * Math.cos(Math.PI * x / HALF_TAPS) + 0.08 * Math.cos(2 * Math.PI * x / HALF_TAPS);
    return s * w;
  }

  push(sample) {
    const v = Math.max(-1, Math.min(1, sample));
    this.peak = Math.max(this.peak, Math.abs(v));
    this.out[this.filled++] = v < 0 ? v * 0x8000 : v * 0x7fff;
    if (this.filled === this.chunkSamples) this.flush();
  }

  flush() {
    if (this.filled === 0) return;
    const chunk = this.out.slice(0, this.filled);
    this.port.postMessage({ pcm: chunk.buffer, peak: this.peak }, [chunk.buffer]);
    this.filled = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const frames = input[0].length;
    // mono mix of every input channel
    const mono = new Float32Array(frames);
    for (const channel of input) for (let i = 0; i < frames; i++) mono[i] += channel[i] / input.length;

    const joined = new Float32Array(this.history.length + frames);
    joined.set(this.history);
    joined.set(mono, this.history.length);

    if (this.step === 1) {
      for (let i = 0; i < frames; i++) this.push(mono[i]);
      this.history = new Float32Array(0);
      return true;
    }
    let pos = this.position;
    while (pos + HALF_TAPS < joined.length) {
      const centre = Math.floor(pos);
      let acc = 0;
      for (let k = centre - HALF_TAPS + 1; k <= centre + HALF_TAPS; k++) acc += joined[k] * this.kernel(pos - k);
      this.push(acc);
      pos += this.step;
    }
    // keep what the next outputs still need
    const keepFrom = Math.max(0, Math.floor(pos) - HALF_TAPS);
    this.history = joined.slice(keepFrom);
    this.position = pos - keepFrom;
    return true;
  }
}

registerProcessor("pcm-encoder", PcmEncoder);
