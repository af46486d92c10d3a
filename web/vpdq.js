// vPDQ in the page: one frame per second chosen by hashing/vpdq.py's rule (specs/vpdq.md, 3.5),
// decoded by the browser through a <video> element (only a page has one, not a Worker) and
// hashed with PDQ by the caller's `hashBitmap` (the Worker). MP4/MOV only: their `moov` box
// gives the frame count and average frame rate the rule needs; <video> gives neither.
// Frame selection, numbers and timestamps equal hashing/vpdq.py's; pixels do not: the browser
// decodes and converts YUV to RGB its own way, while hashing/vpdq.py reproduces Meta's vpdq
// (BT.601, swscale rounding; specs/vpdq.md 3.1), so frame hashes here are a few bits away.

import { FingerprintError } from "./fingerprint-core.js";
import { mp4VideoInfo } from "./mp4.js";

export const SECONDS_PER_HASH = 1;
/** hashing/vpdq.py's VideoLimits defaults. */
export const MAX_FRAME_PIXELS = 7680 * 4320;
export const MAX_FRAMES = 1_000_000;
export const MAX_DURATION_SECONDS = 4 * 3600;

export const CANNOT_DECODE =
  "This browser cannot decode this video, so it has only its exact fingerprints (MD5, SHA-256). " +
  "For a video fingerprint (vPDQ), hash it with the ncii-client program on a computer, or " +
  "convert it to MP4 (H.264) and choose it again.";

/** Python's round(x, 3) for a float32 timestamp: nearest, ties to even. */
export function round3(x) {
  const twice = x * 2000;
  if (Number.isInteger(twice) && twice % 2 === 1 && twice / 2000 === x) {
    const down = (twice - 1) / 2;
    return (down % 2 === 0 ? down : down + 1) / 1000;
  }
  return Number(x.toFixed(3));
}

function once(target, ok, fail) {
  return new Promise((resolve, reject) => {
    const done = () => {
      target.removeEventListener(ok, onOk);
      target.removeEventListener(fail, onFail);
    };
    const onOk = () => {
      done();
      resolve();
    };
    const onFail = () => {
      done();
      reject(new FingerprintError("unsupported-media", CANNOT_DECODE));
    };
    target.addEventListener(ok, onOk);
    target.addEventListener(fail, onFail);
  });
}

/**
 * Seek to time t and take the frame shown, as an ImageBitmap. Where WebCodecs is present the
 * frame's own timestamp is checked against frame n's (relative to frame 0's): a seek that
 * settled on a neighbour (seen under heavy load) is retried, up to 3 times.
 */
async function frameAt(video, t, n, frameRate, start) {
  for (let attempt = 0; ; attempt++) {
    const seeked = once(video, "seeked", "error");
    video.currentTime = t;
    await seeked;
    if (typeof VideoFrame === "undefined") {
      return createImageBitmap(video, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    }
    const frame = new VideoFrame(video);
    try {
      if (start.timestamp === null) start.timestamp = frame.timestamp;
      const shown = ((frame.timestamp - start.timestamp) * frameRate) / 1e6;
      if (Math.abs(shown - n) < 0.5 || attempt >= 3) {
        return await createImageBitmap(frame, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
      }
    } finally {
      frame.close();
    }
    video.currentTime = 0;
    await once(video, "seeked", "error");
  }
}

/**
 * The vPDQ frames of an MP4/MOV Blob: [{frame, quality, hash, timestamp}], as the `hash` of
 * `ncii-client hash --json`'s vpdq record. Frame n (0-based, presentation order) is hashed when
 * n % max(1, trunc(frameRate)) === 0; it is shown by seeking to (n + 0.5) / frameRate.
 */
export async function vpdqOfVideo(blob, hashBitmap, { onProgress = () => {} } = {}) {
  const info = await mp4VideoInfo(blob);
  if (!info || !(info.frameRate > 0) || info.frames < 1) {
    throw new FingerprintError("unreadable-media", "The video's frame table cannot be read: the file is damaged or incomplete.");
  }
  if (info.frameRate > 1000) throw new FingerprintError("unsupported-media", "The video declares more than 1000 frames per second.");
  if (info.frames > MAX_FRAMES || info.frames / info.frameRate > MAX_DURATION_SECONDS) {
    throw new FingerprintError("too-large", "The video is longer than 4 hours (or 1,000,000 frames): cut it into parts and choose each part.");
  }
  if (info.width * info.height > MAX_FRAME_PIXELS) {
    throw new FingerprintError("too-large", `The video's frames are ${info.width}x${info.height}, larger than 8K: save a smaller copy.`);
  }
  const frameMod = Math.max(1, Math.trunc(SECONDS_PER_HASH * info.frameRate));
  const rate32 = Math.fround(info.frameRate);
  const url = URL.createObjectURL(blob);
  const video = document.createElement("video");
  video.muted = true;
  video.preload = "auto";
  try {
    const loaded = once(video, "loadeddata", "error");
    video.src = url;
    await loaded;
    if (video.videoWidth * video.videoHeight > MAX_FRAME_PIXELS) {
      throw new FingerprintError("too-large", "The video's frames are larger than 8K: save a smaller copy.");
    }
    const frames = [];
    const start = { timestamp: null };
    for (let n = 0; n < info.frames; n += frameMod) {
      const t = Math.min((n + 0.5) / info.frameRate, video.duration);
      const bitmap = await frameAt(video, t, n, info.frameRate, start);
      const pdq = await hashBitmap(bitmap);
      frames.push({ frame: n, quality: pdq.quality, hash: pdq.hash, timestamp: round3(Math.fround(n / rate32)) });
      onProgress({ phase: "vpdq", done: n + 1, total: info.frames });
    }
    return frames;
  } finally {
    video.removeAttribute("src");
    video.load();
    URL.revokeObjectURL(url);
  }
}
