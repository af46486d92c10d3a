// The work behind fingerprint(): sniff, MD5 + SHA-256 streamed, PDQ from the browser's decode.
// Runs inside the module Worker (fingerprint-worker.js) so the page stays responsive; it only
// needs Blob, createImageBitmap and OffscreenCanvas, which Workers have. Nothing here sends
// anything anywhere: the file's bytes and pixels never leave this function.

import { md5 } from "./vendor/@noble/hashes/legacy.js";
import { sha256 } from "./vendor/@noble/hashes/sha2.js";
import { PdqBuilder, QUALITY_FLOOR } from "./pdq.js";
import { SNIFF_BYTES, countGifFrames, declaredSize, isHeif, sniffHead } from "./kinds.js";

/** Bytes read per step for MD5/SHA-256: memory for digests is this, whatever the file size. */
export const CHUNK_BYTES = 4 << 20;
/** 134,217,728 pixels, hashing/image.py's DEFAULT_MAX_PIXELS: above 108 MP phone sensors. */
export const MAX_PIXELS = 2 ** 27;
/** Pixels read back from the canvas per strip (16 MiB of RGBA). */
export const STRIP_PIXELS = 1 << 22;
/** Pixels per VideoFrame copy (4 MiB of BGRA; two such strips are held). */
export const FRAME_STRIP_PIXELS = 1 << 20;
/** Bytes searched for a picture's declared size before decoding it. */
const HEADER_BYTES = 1 << 20;
/** A GIF's frames are counted in at most this many leading bytes. */
const GIF_WALK_BYTES = 64 << 20;

/** A failure a person can act on; `code` is one of specs/hash-output.md's stable codes. */
export class FingerprintError extends Error {
  constructor(code, message, records = []) {
    super(message);
    this.name = "FingerprintError";
    this.code = code;
    /** Fingerprints made before the failure (MD5 and SHA-256 of the exact bytes). */
    this.records = records;
  }
}

function hex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Files up to this size are read whole once so SHA-256 runs in the browser's native WebCrypto
 * (about ten times faster than JavaScript, and off this thread); larger files stream. */
export const WHOLE_DIGEST_BYTES = 32 << 20;

/**
 * MD5 and SHA-256 of the blob's bytes. Up to `wholeBytes` (and where WebCrypto exists) the
 * file is read once and SHA-256 is WebCrypto's while MD5 (which WebCrypto lacks) runs here;
 * larger files are read in CHUNK_BYTES slices for both, so memory stays CHUNK_BYTES.
 */
export async function digestBlob(blob, onProgress = () => {}, wholeBytes = WHOLE_DIGEST_BYTES) {
  const m = md5.create();
  const total = blob.size;
  const subtle = globalThis.crypto?.subtle;
  if (subtle && total <= wholeBytes) {
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const native = subtle.digest("SHA-256", bytes);
    for (let at = 0; at < total; at += CHUNK_BYTES) {
      m.update(bytes.subarray(at, Math.min(total, at + CHUNK_BYTES)));
      onProgress({ phase: "digest", done: Math.min(total, at + CHUNK_BYTES), total });
    }
    return { md5: hex(m.digest()), sha256: hex(new Uint8Array(await native)) };
  }
  const s = sha256.create();
  for (let at = 0; at < total; at += CHUNK_BYTES) {
    const chunk = new Uint8Array(await blob.slice(at, Math.min(total, at + CHUNK_BYTES)).arrayBuffer());
    m.update(chunk);
    s.update(chunk);
    onProgress({ phase: "digest", done: Math.min(total, at + CHUNK_BYTES), total });
  }
  return { md5: hex(m.digest()), sha256: hex(s.digest()) };
}

const HEIC_ADVICE =
  "This browser cannot open HEIC/HEIF photos (the iPhone's default format). " +
  "Export or share the photo as JPEG (on the iPhone: Settings > Camera > Formats > Most Compatible, " +
  "or share it to Files as JPEG), then choose the JPEG here.";

function decodeFailure(sniffed, head) {
  if (isHeif(head)) return new FingerprintError("unsupported-media", HEIC_ADVICE);
  if (sniffed.format === "tiff") {
    return new FingerprintError(
      "unsupported-media",
      "This browser cannot open TIFF pictures. Save the picture as JPEG or PNG and choose that file.",
    );
  }
  if (sniffed.format === "heif") {
    return new FingerprintError(
      "unsupported-media",
      "This browser cannot open this HEIF/AVIF picture. Save it as JPEG or PNG and choose that file.",
    );
  }
  return new FingerprintError(
    "unreadable-media",
    `The picture cannot be decoded: the ${sniffed.format.toUpperCase()} file is damaged or incomplete. ` +
      "Try the original file from your phone or camera.",
  );
}

function tooLarge(width, height, maxPixels) {
  return new FingerprintError(
    "too-large",
    `The picture is ${width}x${height} pixels, more than the limit of ${maxPixels}. ` +
      "Save a smaller copy (for example 8000 pixels on the long side) and choose that.",
  );
}

/**
 * Starts decoding a picture as the browser shows it: EXIF orientation applied by
 * createImageBitmap's "from-image", no colour-space conversion, no premultiplication. Resolves
 * to the ImageBitmap (the caller closes it) or rejects with FingerprintError. The browser
 * decodes off this thread, so the caller can digest the file meanwhile.
 */
export async function decodeImage(blob, sniffed, head, { maxPixels = MAX_PIXELS } = {}) {
  // A JPEG's size (SOF) can sit after large EXIF/XMP segments: look further than the sniff.
  const declared = declaredSize(head) ?? declaredSize(new Uint8Array(await blob.slice(0, HEADER_BYTES).arrayBuffer()));
  if (declared && declared.width * declared.height > maxPixels) {
    throw tooLarge(declared.width, declared.height, maxPixels);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "from-image",
    });
  } catch {
    throw decodeFailure(sniffed, head);
  }
  const { width, height } = bitmap;
  if (width < 1 || height < 1 || width * height > maxPixels) {
    bitmap.close();
    throw width < 1 || height < 1 ? decodeFailure(sniffed, head) : tooLarge(width, height, maxPixels);
  }
  return bitmap;
}

/** PDQ of a picture: decodeImage, then pdqOfBitmap. */
export async function pdqOfImage(blob, sniffed, head, { maxPixels = MAX_PIXELS, onProgress = () => {} } = {}) {
  onProgress({ phase: "decode", done: 0, total: 1 });
  return pdqOfBitmap(await decodeImage(blob, sniffed, head, { maxPixels }), onProgress);
}

const NATIVE_ORDER = { RGBA: "addRGBA", RGBX: "addRGBA", BGRA: "addBGRA", BGRX: "addBGRA" };

/**
 * PDQ of an ImageBitmap (a decoded picture or a video frame), which it closes. Pixels are read
 * in strips of at most STRIP_PIXELS rows' worth: through a WebCodecs VideoFrame's copyTo in its
 * native RGBA/BGRA layout where the browser has it (about twice as fast as a canvas read-back),
 * else through a small OffscreenCanvas.
 */
export async function pdqOfBitmap(bitmap, onProgress = () => {}) {
  try {
    const viaFrame = await pdqViaVideoFrame(bitmap, onProgress);
    if (viaFrame) return viaFrame;
    const { width, height } = bitmap;
    const builder = new PdqBuilder(width, height);
    const stripRows = Math.max(1, Math.min(height, Math.floor(STRIP_PIXELS / width)));
    const canvas = new OffscreenCanvas(width, stripRows);
    const ctx = canvas.getContext("2d", { willReadFrequently: true, alpha: true });
    ctx.globalCompositeOperation = "copy";
    for (let top = 0; top < height; top += stripRows) {
      const rows = Math.min(stripRows, height - top);
      ctx.drawImage(bitmap, 0, top, width, rows, 0, 0, width, rows);
      builder.addRGBA(ctx.getImageData(0, 0, width, rows).data, rows);
      onProgress({ phase: "pdq", done: top + rows, total: height });
    }
    return builder.finish();
  } finally {
    bitmap.close();
  }
}

/** The VideoFrame read-back, or null when this browser or this bitmap does not allow it (no
 * WebCodecs, another pixel layout, a frame whose coded size is not the bitmap's). */
async function pdqViaVideoFrame(bitmap, onProgress) {
  if (typeof VideoFrame === "undefined") return null;
  const { width, height } = bitmap;
  let frame;
  try {
    frame = new VideoFrame(bitmap, { timestamp: 0 });
  } catch {
    return null;
  }
  try {
    const add = NATIVE_ORDER[frame.format];
    const plain = (frame.rotation ?? 0) === 0 && !frame.flip;
    if (!add || !plain || frame.codedWidth !== width || frame.codedHeight !== height) return null;
    const builder = new PdqBuilder(width, height);
    // Two strips: the browser copies the next one while this thread hashes the current one.
    const stripRows = Math.max(1, Math.min(height, Math.floor(FRAME_STRIP_PIXELS / width)));
    const strips = [new Uint8Array(width * stripRows * 4), null];
    if (stripRows < height) strips[1] = new Uint8Array(width * stripRows * 4);
    const copy = (top, i) => {
      const copied = frame.copyTo(strips[i], { rect: { x: 0, y: top, width, height: Math.min(stripRows, height - top) } });
      copied.catch(() => {}); // awaited in order; a copy cut short by an error is not unhandled
      return copied;
    };
    let next = copy(0, 0);
    for (let top = 0, i = 0; top < height; top += stripRows, i ^= 1) {
      const rows = Math.min(stripRows, height - top);
      await next;
      if (top + rows < height) next = copy(top + rows, i ^ 1);
      builder[add](strips[i], rows);
      onProgress({ phase: "pdq", done: top + rows, total: height });
    }
    return builder.finish();
  } catch {
    return null;
  } finally {
    frame.close();
  }
}

async function sniffBlob(blob) {
  const head = new Uint8Array(await blob.slice(0, SNIFF_BYTES).arrayBuffer());
  let sniffed = sniffHead(head);
  if (sniffed.format === "gif") {
    const bytes = new Uint8Array(await blob.slice(0, GIF_WALK_BYTES).arrayBuffer());
    if (countGifFrames(bytes, 2) >= 2) sniffed = { kind: "video", format: "gif" };
  }
  return { head, sniffed };
}

/**
 * The records `ncii-client hash --json` prints for this file (md5, sha256, then pdq for
 * pictures) and notes for the person. Rejects with FingerprintError (its `records` hold the
 * md5 and sha256 already made).
 */
export async function fingerprintBlob(blob, options = {}) {
  if (!(blob instanceof Blob)) throw new FingerprintError("not-a-regular-file", "Choose a file to fingerprint.");
  const onProgress = options.onProgress ?? (() => {});
  const path = options.path ?? (typeof blob.name === "string" ? blob.name : "");
  if (blob.size === 0) {
    throw new FingerprintError("unreadable-media", "The file is empty (0 bytes): choose the original file.");
  }
  const { head, sniffed } = await sniffBlob(blob);
  const kind = sniffed.kind;
  // A picture decodes (in the browser, off this thread) while the digests run here.
  let decoding = null;
  if (kind === "image") {
    onProgress({ phase: "decode", done: 0, total: 1 });
    decoding = decodeImage(blob, sniffed, head, { maxPixels: options.maxPixels ?? MAX_PIXELS });
    decoding.catch(() => {}); // awaited below; not an unhandled rejection meanwhile
  }
  let digests;
  try {
    digests = await digestBlob(blob, onProgress, options.wholeDigestBytes ?? WHOLE_DIGEST_BYTES);
  } catch (err) {
    decoding?.then((bitmap) => bitmap.close(), () => {});
    throw err;
  }
  const records = [
    { path, kind, algorithm: "md5", hash: digests.md5, quality: null },
    { path, kind, algorithm: "sha256", hash: digests.sha256, quality: null },
  ];
  const notes = [];
  if (kind === "image") {
    let pdq;
    try {
      pdq = await pdqOfBitmap(await decoding, onProgress);
    } catch (err) {
      if (err instanceof FingerprintError) {
        err.records = records;
        throw err;
      }
      throw new FingerprintError("hashing-failed", `The picture could not be fingerprinted (${err?.name ?? "error"}).`, records);
    }
    records.push({ path, kind, algorithm: "pdq", hash: pdq.hash, quality: pdq.quality, fit: pdq.quality >= QUALITY_FLOOR });
    if (pdq.quality < QUALITY_FLOOR) {
      notes.push(`The picture is too flat to fingerprint reliably (quality ${pdq.quality} < ${QUALITY_FLOOR}); only its exact copies can be found.`);
    }
  } else if (kind === "video") {
    // vPDQ needs a <video> element, which only the page has: fingerprint.js adds it there.
    return { records, notes, video: { format: sniffed.format } };
  } else {
    notes.push("Not a picture or video: only exact copies of this file (MD5, SHA-256) can be found.");
  }
  onProgress({ phase: "done", done: 1, total: 1 });
  return { records, notes };
}
