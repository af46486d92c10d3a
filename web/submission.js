// Request bodies for the hub (specs/submission.md), built exactly as the Python client builds
// them (client/plan.py, client/hub.py), so the page and `ncii-client` send the same bytes for the
// same fingerprints, secret, time and nonce (tests/web/test_web_case_bytes.py checks it).
//
//   import { planSubmission, sealSubmissions } from "./submission.js";
//   const plan = planSubmission([resultOfFile1.records, resultOfFile2.records]);
//   // plan.files[i]: {kind, state: "ready"|"low-quality"|"skipped", algorithms, hashCount}
//   const envelopes = sealSubmissions(deriveCase(secret), plan.hashes, now);
//
// Input: the records fingerprint() returns (specs/hash-output.md section 3), one array per
// file. Only fingerprints go into a body: no record's path, kind or any other field is copied
// (there is no field for them). A file is sent whole or not at all, as client/plan.py decides:
// a picture or video too flat to match (PDQ quality < 50, or every vPDQ frame) sends nothing,
// nor does a file that is not a picture or video. Errors: SubmissionError, `.code` "bad_record"
// (a record that is not what fingerprint() makes; the message names its position, never a
// value) or "bad_entry_id".
import { sealNow, seal, Purpose } from "./envelope.js";
import { QUALITY_FLOOR } from "./pdq.js";
import { round3 } from "./vpdq.js";

/** The hub's per-request caps with the Python client's margins (client/plan.py SubmitLimits). */
export const DEFAULT_LIMITS = Object.freeze({ maxHashes: 1000, maxBody: 1_000_000, maxFrames: 5000 });
export const READY = "ready";
export const LOW_QUALITY = "low-quality";
export const SKIPPED = "skipped";
const HEX = { pdq: 64, md5: 32, sha256: 64 };
const MAX_FRAME_NUMBER = 2 ** 31 - 1;
const MAX_TIMESTAMP = 1e7;
const ENTRY_ID = /^[0-9a-f]{32}$/;
const encoder = new TextEncoder();

export class SubmissionError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "SubmissionError";
    this.code = code;
  }
}

const isHex = (value, digits) => typeof value === "string" && value.length === digits && /^[0-9a-f]+$/.test(value);
const isInt = (value, lo, hi) => Number.isSafeInteger(value) && value >= lo && value <= hi;

/** A float as Python's repr() writes it (json.dumps uses it): shortest round-trip digits, a
 * ".0" on whole numbers, exponent form below 1e-4 and from 1e16. */
export function pythonFloat(x) {
  if (!Number.isFinite(x)) throw new SubmissionError("bad_record", "a timestamp is a finite number");
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, exponentText] = x.toExponential().split("e");
  const exponent = Number(exponentText);
  if (exponent >= -4 && exponent < 16) {
    const text = String(x);
    return text.includes(".") ? text : `${text}.0`;
  }
  const sign = exponent < 0 ? "-" : "+";
  return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
}

// -- hub hash objects (specs/submission.md section 3), in client/plan.py's key order -----------

function frameJson(f, sorted) {
  const ts = pythonFloat(f.timestamp);
  return sorted
    ? `{"frame":${f.frame},"hash":"${f.hash}","quality":${f.quality},"timestamp":${ts}}`
    : `{"frame":${f.frame},"quality":${f.quality},"hash":"${f.hash}","timestamp":${ts}}`;
}

/** One hub hash object as json.dumps(obj, separators=(",", ":")) spells it; `sorted`: with
 * sort_keys=True, as client/plan.py's canonical_hash_key and the hub's entry bodies do. */
function hashJson(h, sorted = false) {
  if (h.algorithm === "pdq") return `{"algorithm":"pdq","hash":"${h.hash}","quality":${h.quality}}`;
  if (h.algorithm === "md5" || h.algorithm === "sha256") return `{"algorithm":"${h.algorithm}","hash":"${h.hash}"}`;
  return `{"algorithm":"vpdq","frames":[${h.frames.map((f) => frameJson(f, sorted)).join(",")}]}`;
}

/** Whether `h` is a hub hash object this module can write (as made here or shown by the hub). */
function validHash(h) {
  if (!h || typeof h !== "object") return false;
  if (h.algorithm === "pdq") return isHex(h.hash, 64) && isInt(h.quality, 0, 100);
  if (h.algorithm === "md5" || h.algorithm === "sha256") return isHex(h.hash, HEX[h.algorithm]);
  if (h.algorithm === "vpdq") {
    return (
      Array.isArray(h.frames) &&
      h.frames.every(
        (f) =>
          f &&
          isInt(f.frame, 0, MAX_FRAME_NUMBER) &&
          isInt(f.quality, 0, 100) &&
          isHex(f.hash, 64) &&
          typeof f.timestamp === "number" &&
          Number.isFinite(f.timestamp) &&
          f.timestamp >= 0 &&
          f.timestamp <= MAX_TIMESTAMP,
      )
    );
  }
  return false;
}

/**
 * One string per hash object, as the hub's entry bodies spell it (sorted keys, float
 * timestamps): equal keys mean the hub would see a duplicate. null for anything that is not a
 * hub hash object (e.g. a malformed `hash` in a status answer).
 */
export function canonicalHashKey(h) {
  return validHash(h) ? hashJson(h, true) : null;
}

// -- from fingerprint() records to hash objects (client/plan.py _report) ------------------------

/** The records of one file, each checked; the first problem throws, naming its position. */
function checkRecords(records, where) {
  if (!Array.isArray(records) || records.length === 0) {
    throw new SubmissionError("bad_record", `${where}: no fingerprints`);
  }
  records.forEach((r, i) => {
    const at = `${where}.records[${i}]`;
    if (!r || typeof r !== "object") throw new SubmissionError("bad_record", `${at} is not a record`);
    if (r.algorithm in HEX) {
      if (!isHex(r.hash, HEX[r.algorithm])) throw new SubmissionError("bad_record", `${at}.hash is not ${HEX[r.algorithm]} lowercase hex`);
      if (r.algorithm === "pdq" && !isInt(r.quality, 0, 100)) throw new SubmissionError("bad_record", `${at}.quality is not 0..100`);
    } else if (r.algorithm === "vpdq") {
      if (!validHash({ algorithm: "vpdq", frames: r.hash }) || r.hash.length === 0) {
        throw new SubmissionError("bad_record", `${at}.hash is not a list of vPDQ frames`);
      }
    } else {
      throw new SubmissionError("bad_record", `${at}.algorithm is not md5, sha256, pdq or vpdq`);
    }
  });
}

/** Long videos become several vPDQ entries of at most maxFrames frames; a chunk whose every
 * frame is too flat is left out (the hub would refuse it whole). */
function vpdqObjects(frames, maxFrames) {
  const all = frames.map((f) => ({ frame: f.frame, quality: f.quality, hash: f.hash, timestamp: round3(f.timestamp) }));
  const out = [];
  for (let i = 0; i < all.length; i += maxFrames) {
    const chunk = all.slice(i, i + maxFrames);
    if (chunk.some((f) => f.quality >= QUALITY_FLOOR)) out.push({ algorithm: "vpdq", frames: chunk });
  }
  return out;
}

/**
 * What one file contributes: {kind, state, algorithms, hashCount, hashes}. `state` is "ready"
 * (its hashes are sent), "low-quality" (too flat: nothing sent) or "skipped" (not a picture or
 * video: nothing sent). The hashes' order is client/plan.py's: pdq or vpdq first, then md5, sha256.
 */
export function fileReport(records, limits = DEFAULT_LIMITS, where = "file") {
  checkRecords(records, where);
  const kind = typeof records[0].kind === "string" ? records[0].kind : "unknown";
  const none = (state) => ({ kind, state, algorithms: [], hashCount: 0, hashes: [] });
  if (kind !== "image" && kind !== "video") return none(SKIPPED);
  const digests = [];
  const media = [];
  for (const r of records) {
    if (r.algorithm === "md5" || r.algorithm === "sha256") {
      digests.push({ algorithm: r.algorithm, hash: r.hash });
    } else if (r.algorithm === "pdq") {
      if (r.fit === false || r.quality < QUALITY_FLOOR) return none(LOW_QUALITY);
      media.push({ algorithm: "pdq", hash: r.hash, quality: r.quality });
    } else {
      if (r.fit === false || !r.hash.some((f) => f.quality >= QUALITY_FLOOR)) return none(LOW_QUALITY);
      media.push(...vpdqObjects(r.hash, limits.maxFrames));
    }
  }
  const hashes = [...media, ...digests];
  const algorithms = [...new Set(hashes.map((h) => h.algorithm))];
  return { kind, state: READY, algorithms, hashCount: hashes.length, hashes };
}

/** Per-file record arrays from whatever the page holds: arrays of records, fingerprint()
 * results ({records}), or one flat array of records (a file starts at each md5 record). */
export function groupFiles(input) {
  if (!Array.isArray(input)) throw new SubmissionError("bad_record", "expected a list of files' fingerprints");
  if (input.length && input.every((x) => x && !Array.isArray(x) && typeof x.algorithm === "string")) {
    const files = [];
    for (const r of input) {
      if (r.algorithm === "md5" || files.length === 0) files.push([]);
      files[files.length - 1].push(r);
    }
    return files;
  }
  return input.map((x) => (Array.isArray(x) ? x : x && Array.isArray(x.records) ? x.records : null));
}

/**
 * The distinct hash objects of every ready file, in file order (copies of one picture, or one
 * file chosen twice, would otherwise be refused by the hub as duplicates), and a report per file.
 */
export function planSubmission(files, limits = DEFAULT_LIMITS) {
  const reports = groupFiles(files).map((records, i) => fileReport(records, limits, `files[${i}]`));
  const seen = new Set();
  const hashes = [];
  for (const report of reports) {
    if (report.state !== READY) continue;
    for (const h of report.hashes) {
      const key = hashJson(h, true);
      if (!seen.has(key)) {
        seen.add(key);
        hashes.push(h);
      }
    }
  }
  return {
    hashes,
    hashCount: hashes.length,
    files: reports.map(({ hashes: _, ...rest }) => rest),
  };
}

// -- bodies -------------------------------------------------------------------------------------

/** The submission body `{"v":1,"hashes":[...]}` (section 3): compact JSON, ASCII. */
export function submissionBody(hashes) {
  hashes.forEach((h, i) => {
    if (!validHash(h)) throw new SubmissionError("bad_record", `hashes[${i}] is not a hub hash object`);
  });
  return encoder.encode(`{"v":1,"hashes":[${hashes.map((h) => hashJson(h)).join(",")}]}`);
}

/** Submission bodies each within maxHashes items and maxBody bytes (client/plan.py split_bodies). */
export function splitBodies(hashes, limits = DEFAULT_LIMITS) {
  const empty = submissionBody([]).length;
  const bodies = [];
  let chunk = [];
  let size = empty;
  for (const h of hashes) {
    if (!validHash(h)) throw new SubmissionError("bad_record", "a hash is not a hub hash object");
    const item = hashJson(h).length + 1;
    if (chunk.length && (chunk.length >= limits.maxHashes || size + item > limits.maxBody)) {
      bodies.push(submissionBody(chunk));
      chunk = [];
      size = empty;
    }
    chunk.push(h);
    size += item;
  }
  if (chunk.length) bodies.push(submissionBody(chunk));
  return bodies;
}

/**
 * Every body of the plan signed as a `submission` envelope at `now` (unix seconds).
 * `nonce()` draws each 16-byte nonce (default: random; a fixed source only for tests).
 */
export function sealSubmissions(signer, hashes, now, { limits = DEFAULT_LIMITS, nonce = null } = {}) {
  return splitBodies(hashes, limits).map((body) =>
    nonce ? seal(signer, Purpose.SUBMISSION, body, now, nonce()) : sealNow(signer, Purpose.SUBMISSION, body, now),
  );
}

/** The status-query body (section 6). */
export function statusQueryBody() {
  return encoder.encode('{"v":1}');
}

/**
 * The withdrawal body (section 5): "all" withdraws the whole case; otherwise a list of entry
 * ids (trimmed, lowercased, duplicates dropped, order kept, as client/hub.py does).
 */
export function withdrawalBody(entries) {
  if (entries === "all") return encoder.encode('{"v":1,"all":true}');
  if (!Array.isArray(entries)) throw new SubmissionError("bad_entry_id", 'withdraw a list of entry ids or "all"');
  const ids = [...new Set(entries.map((e) => (typeof e === "string" ? e.trim().toLowerCase() : "")))];
  if (ids.length === 0 || !ids.every((id) => ENTRY_ID.test(id))) {
    throw new SubmissionError("bad_entry_id", "an entry id is 32 hex digits as the hub gave it");
  }
  return encoder.encode(`{"v":1,"entries":[${ids.map((id) => `"${id}"`).join(",")}]}`);
}
