// Voice messages: recording in the browser (MediaRecorder, Opus in WebM or Ogg) with a live
// level meter (Web Audio AnalyserNode) and a timer, and the player every audio attachment
// gets in the timeline (play / pause, a seek bar, elapsed and total time).
//
// A recording is an ordinary upload (POST /uploads sniffs it as audio/webm or audio/ogg)
// sent as a message's attachment; nothing about it is special on the server.

import { formatBytes, h, icon, iconButton } from "../dom.js";

// Recordings stop by themselves after this long: a forgotten recorder must not fill the
// upload limit (Opus at ~32 kbit/s is about 1.2 MB for five minutes).
export const MAX_RECORDING_MS = 5 * 60 * 1000;
const METER_BARS = 28;
const METER_FRAME_MS = 60;
// Preferred containers, in order; the first the browser can record is used.
const MIME_TYPES = ["audio/webm;codecs=opus", "audio/ogg;codecs=opus", "audio/webm", "audio/ogg"];

export function canRecord() {
  return typeof window.MediaRecorder === "function" && Boolean(navigator.mediaDevices?.getUserMedia);
}

function recordingType() {
  return MIME_TYPES.find((type) => MediaRecorder.isTypeSupported?.(type)) || "";
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "0:00";
  const whole = Math.floor(seconds);
  return `${Math.floor(whole / 60)}:${String(whole % 60).padStart(2, "0")}`;
}

/**
 * One recording: `start()` asks for the microphone and records; `finish()` resolves to a
 * File (or null when cancelled or empty); `cancel()` throws it away. `el` is the bar shown
 * in the composer while recording: a red dot, the time, the level meter, Cancel and Send.
 */
export class VoiceRecorder {
  constructor({ onSend, onCancel }) {
    this.onSend = onSend;
    this.onCancel = onCancel;
    this.chunks = [];
    this.levels = new Array(METER_BARS).fill(0);
    this.bars = Array.from({ length: METER_BARS }, () => h("span", { class: "voice-meter-bar" }));
    this.time = h("span", { class: "voice-time", role: "timer", "aria-live": "off" }, "0:00");
    this.meter = h("span", { class: "voice-meter", role: "meter", "aria-label": "Microphone level", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": "0" }, this.bars);
    this.el = h("div", { class: "voice-recorder", role: "group", "aria-label": "Recording a voice message" },
      h("span", { class: "voice-dot", "aria-hidden": "true" }),
      h("span", { class: "voice-label" }, "Recording"),
      this.time,
      this.meter,
      h("button", { type: "button", class: "btn btn-small btn-ghost", onclick: () => this.cancel() }, "Cancel"),
      h("button", { type: "button", class: "btn btn-small btn-primary voice-send", onclick: () => this.send() }, icon("send", { size: 14 }), " Send"));
    this.el.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        this.cancel();
      }
    });
  }

  async start() {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    const mimeType = recordingType();
    this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : undefined);
    this.recorder.addEventListener("dataavailable", (event) => {
      if (event.data?.size) this.chunks.push(event.data);
    });
    this.stopped = new Promise((resolve) => this.recorder.addEventListener("stop", resolve, { once: true }));
    this.recorder.start(1000); // a chunk a second: a crash loses at most that much in memory
    this.startedAt = performance.now();
    this._meter();
    this._limit = setTimeout(() => this.send(), MAX_RECORDING_MS);
    this.el.querySelector(".voice-send")?.focus();
  }

  _meter() {
    try {
      this.audio = new AudioContext();
      const source = this.audio.createMediaStreamSource(this.stream);
      this.analyser = this.audio.createAnalyser();
      this.analyser.fftSize = 1024;
      source.connect(this.analyser);
    } catch {
      this.analyser = null; // no Web Audio: the timer still runs, the meter stays flat
    }
    const samples = new Uint8Array(this.analyser?.fftSize || 0);
    let last = 0;
    const frame = (now) => {
      if (!this.recorder || this.recorder.state === "inactive") return;
      this._frame = requestAnimationFrame(frame);
      if (now - last < METER_FRAME_MS) return;
      last = now;
      this.time.textContent = formatDuration((now - this.startedAt) / 1000);
      if (!this.analyser) return;
      this.analyser.getByteTimeDomainData(samples);
      let sum = 0;
      for (const sample of samples) sum += ((sample - 128) / 128) ** 2;
      // RMS, scaled so that speech fills most of the bar (it rarely passes 0.3).
      const level = Math.min(1, Math.sqrt(sum / samples.length) * 3.5);
      this.levels.push(level);
      this.levels.shift();
      this.bars.forEach((bar, i) => { bar.style.transform = `scaleY(${Math.max(0.08, this.levels[i]).toFixed(3)})`; });
      this.meter.setAttribute("aria-valuenow", String(Math.round(level * 100)));
      this.meter.dataset.level = level.toFixed(3);
    };
    this._frame = requestAnimationFrame(frame);
  }

  /** Stop and hand the recording to `onSend(file)`. */
  async send() {
    const file = await this._stop();
    if (file) this.onSend(file);
    else this.onCancel();
  }

  async cancel() {
    await this._stop();
    this.chunks = [];
    this.onCancel();
  }

  async _stop() {
    clearTimeout(this._limit);
    cancelAnimationFrame(this._frame);
    if (!this.recorder) return null;
    const recorder = this.recorder;
    if (recorder.state !== "inactive") {
      recorder.stop();
      await this.stopped;
    }
    this.recorder = null;
    for (const track of this.stream?.getTracks() || []) track.stop();
    this.audio?.close().catch(() => {});
    if (!this.chunks.length) return null;
    const type = (recorder.mimeType || "audio/webm").split(";")[0];
    const extension = type.includes("ogg") ? "ogg" : "webm";
    const stamp = new Date().toISOString().slice(0, 19).replace(/[T:]/g, "-");
    return new File(this.chunks, `Voice message ${stamp}.${extension}`, { type });
  }
}

/**
 * The player of an audio attachment: play / pause, a seek slider, "0:04 / 0:12", the name
 * and size. `onError(audio)` refreshes an expired URL.
 */
export function renderVoicePlayer(attachment, onError) {
  const audio = h("audio", { preload: "metadata", src: attachment.url, class: "voice-audio" });
  const play = h("button", { type: "button", class: "voice-play", "aria-label": `Play ${attachment.name}`, title: "Play" }, icon("play", { size: 16 }));
  const seek = h("input", { type: "range", class: "voice-seek", min: "0", max: "0", step: "0.01", value: "0", "aria-label": "Position" });
  const time = h("span", { class: "voice-clock" }, "0:00");
  const el = h("div", { class: "voice-player", role: "group", "aria-label": `Voice message ${attachment.name}` },
    audio, play,
    h("div", { class: "voice-body" }, seek,
      h("div", { class: "voice-info" }, time, h("span", { class: "voice-name" }, `${attachment.name} · ${formatBytes(attachment.size)}`))));

  let duration = NaN;
  const render = () => {
    const playing = !audio.paused && !audio.ended;
    play.replaceChildren(icon(playing ? "pause" : "play", { size: 16 }));
    play.setAttribute("aria-label", `${playing ? "Pause" : "Play"} ${attachment.name}`);
    play.title = playing ? "Pause" : "Play";
    el.classList.toggle("is-playing", playing);
    if (Number.isFinite(duration)) seek.max = String(duration);
    seek.value = String(audio.currentTime);
    time.textContent = Number.isFinite(duration) ? `${formatDuration(audio.currentTime)} / ${formatDuration(duration)}` : formatDuration(audio.currentTime);
  };
  const learnDuration = () => {
    if (Number.isFinite(audio.duration)) {
      duration = audio.duration;
      render();
      return;
    }
    // Recordings from MediaRecorder carry no duration: seeking far past the end makes the
    // browser find it; then back to the start.
    const found = () => {
      if (!Number.isFinite(audio.duration)) return;
      audio.removeEventListener("timeupdate", found);
      duration = audio.duration;
      audio.currentTime = 0;
      render();
    };
    audio.addEventListener("timeupdate", found);
    audio.currentTime = 1e101;
  };
  audio.addEventListener("loadedmetadata", learnDuration, { once: true });
  audio.addEventListener("durationchange", () => {
    if (Number.isFinite(audio.duration)) duration = audio.duration;
  });
  for (const type of ["play", "pause", "ended", "timeupdate"]) audio.addEventListener(type, render);
  audio.addEventListener("error", () => onError?.(audio));
  play.addEventListener("click", () => {
    if (audio.paused || audio.ended) {
      for (const other of document.querySelectorAll("audio.voice-audio")) if (other !== audio) other.pause();
      audio.play().catch(() => {});
    } else {
      audio.pause();
    }
  });
  seek.addEventListener("input", () => {
    audio.currentTime = Number(seek.value);
  });
  return el;
}

/** The composer's microphone button, or nothing where the browser cannot record. */
export function microphoneButton(onClick) {
  return canRecord() ? iconButton("mic", "Record a voice message", onClick) : null;
}
