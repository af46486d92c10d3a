// fingerprint(blob, options): the fingerprints `ncii-client hash --json` gives for a file,
// made in this browser, in a module Worker so the page stays responsive.
//
//   import { fingerprint, FingerprintError } from "./fingerprint.js";
//   const { records, notes } = await fingerprint(file, { onProgress: (p) => ... });
//
// `records` are the JSON records of specs/hash-output.md, section 3 (md5, sha256, then pdq for
// pictures, vpdq for MP4/MOV videos this browser decodes); `notes` are sentences for the
// person (a flat picture, a video without vPDQ and why).
// Failures reject with FingerprintError: `code` is the stable code (unsupported-media,
// unreadable-media, too-large, ...), `message` says what to do, `records` holds the md5 and
// sha256 made before the failure. Options: onProgress({phase, done, total}), path (the record's
// path; default the File's name), maxPixels, worker (false: run on the calling thread).
import { FingerprintError, fingerprintBlob, pdqOfBitmap } from "./fingerprint-core.js";
import { QUALITY_FLOOR } from "./pdq.js";
import { CANNOT_DECODE, vpdqOfVideo } from "./vpdq.js";

export { FingerprintError };

let worker = null;
let nextId = 1;
const pending = new Map();

function getWorker() {
  if (worker) return worker;
  worker = new Worker(new URL("./fingerprint-worker.js", import.meta.url), { type: "module" });
  worker.onmessage = (event) => {
    const { id, type } = event.data;
    const job = pending.get(id);
    if (!job) return;
    if (type === "progress") {
      job.onProgress(event.data.progress);
      return;
    }
    pending.delete(id);
    if (type === "done") job.resolve(event.data.result);
    else job.reject(new FingerprintError(event.data.code, event.data.message, event.data.records));
  };
  worker.onerror = () => {
    const jobs = [...pending.values()];
    pending.clear();
    worker = null;
    for (const job of jobs) {
      job.reject(new FingerprintError("hashing-failed", "The fingerprinting worker stopped (out of memory?). Reload the page and try fewer or smaller files."));
    }
  };
  return worker;
}

function inWorker(message, transfer, onProgress) {
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, onProgress });
    getWorker().postMessage({ id, ...message }, transfer);
  });
}

/** Adds the vpdq record to a video's result (MP4/MOV the browser decodes), or a note saying why not. */
async function addVpdq(result, blob, path, useWorker, onProgress) {
  const { records, notes, video } = result;
  delete result.video;
  if (!video) return result;
  if (typeof document === "undefined" || !["mp4", "mov"].includes(video.format)) {
    notes.push(CANNOT_DECODE);
    return result;
  }
  const hashBitmap = useWorker
    ? (bitmap) => inWorker({ bitmap }, [bitmap], () => {})
    : async (bitmap) => pdqOfBitmap(bitmap);
  try {
    const frames = await vpdqOfVideo(blob, hashBitmap, { onProgress });
    const fit = frames.some((f) => f.quality >= QUALITY_FLOOR);
    records.push({ path, kind: "video", algorithm: "vpdq", hash: frames, quality: null, fit });
    if (!fit) notes.push("The video is too flat to fingerprint reliably: only its exact copies can be found.");
  } catch (err) {
    if (!(err instanceof FingerprintError)) throw err;
    notes.push(err.message);
  }
  return result;
}

export async function fingerprint(blob, options = {}) {
  const { onProgress = () => {}, worker: useWorker = true, ...rest } = options;
  if (!(blob instanceof Blob)) {
    throw new FingerprintError("not-a-regular-file", "Choose a file to fingerprint.");
  }
  const path = rest.path ?? (typeof blob.name === "string" ? blob.name : "");
  const result = useWorker
    ? await inWorker({ blob, options: { ...rest, path } }, [], onProgress)
    : await fingerprintBlob(blob, { ...rest, path, onProgress });
  return addVpdq(result, blob, path, useWorker, onProgress);
}
