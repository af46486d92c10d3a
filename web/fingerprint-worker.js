// Module Worker running fingerprintBlob off the page's main thread. Messages in:
// {id, blob, options}; out: {id, type: "progress", progress} | {id, type: "done", result} |
// {id, type: "error", code, message, records}. Files are handled one at a time, in order.
import { FingerprintError, fingerprintBlob, pdqOfBitmap } from "./fingerprint-core.js";

let queue = Promise.resolve();

self.onmessage = (event) => {
  const { id, blob, options, bitmap } = event.data ?? {};
  if (bitmap) {
    // A video frame from the page (vPDQ): hash it at once, between files' steps.
    pdqOfBitmap(bitmap).then(
      (result) => self.postMessage({ id, type: "done", result }),
      () => self.postMessage({ id, type: "error", code: "hashing-failed", message: "A video frame could not be fingerprinted.", records: [] }),
    );
    return;
  }
  queue = queue.then(async () => {
    const onProgress = (progress) => self.postMessage({ id, type: "progress", progress });
    try {
      const result = await fingerprintBlob(blob, { ...(options ?? {}), onProgress });
      self.postMessage({ id, type: "done", result });
    } catch (err) {
      const typed = err instanceof FingerprintError;
      self.postMessage({
        id,
        type: "error",
        code: typed ? err.code : "hashing-failed",
        message: typed ? err.message : "The file could not be fingerprinted (an unexpected error in this browser).",
        records: typed ? err.records : [],
      });
    }
  });
};
