// fingerprint(blob, options): the fingerprints `ncii-client hash --json` gives for a file,
// made in this browser, in a module Worker so the page stays responsive.
//
//   import { fingerprint, FingerprintError } from "./fingerprint.js";
//   const { records, notes } = await fingerprint(file, { onProgress: (p) => ... });
//
// `records` are the JSON records of specs/hash-output.md, section 3 (md5, sha256, then pdq for
// pictures); `notes` are sentences for the person (a flat picture, a video without vPDQ).
// Failures reject with FingerprintError: `code` is the stable code (unsupported-media,
// unreadable-media, too-large, ...), `message` says what to do, `records` holds the md5 and
// sha256 made before the failure. Options: onProgress({phase, done, total}), path (the record's
// path; default the File's name), maxPixels, worker (false: run on the calling thread).
import { FingerprintError, fingerprintBlob } from "./fingerprint-core.js";

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

export function fingerprint(blob, options = {}) {
  const { onProgress = () => {}, worker: useWorker = true, ...rest } = options;
  if (!(blob instanceof Blob)) {
    return Promise.reject(new FingerprintError("not-a-regular-file", "Choose a file to fingerprint."));
  }
  if (!useWorker) return fingerprintBlob(blob, { ...rest, onProgress });
  const path = rest.path ?? (typeof blob.name === "string" ? blob.name : "");
  return new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject, onProgress });
    getWorker().postMessage({ id, blob, options: { ...rest, path } });
  });
}
