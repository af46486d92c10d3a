// Receipts checked in the page: the hub's latest checkpoint is verified against the log key the
// page was served with (<meta name="ncii-log-key">, covered by the signed page manifest), then
// each logged entry's inclusion proof is computed from the public tiles and checked against it.
// The person then sees "in the public log" per file, on evidence the page checked itself.
//
// Entries come from the case's signed status answer (specs/submission.md section 6): `state`,
// `log_index` and `leaf_hash` per entry. No request here names a leaf or a case: the page
// fetches /checkpoint and the same tiles every log reader fetches (specs/hub-api.md section 4).
import { NoteError, openCheckpoint, parseVerifierKey, ALG_ED25519 } from "./note.js";
import { MerkleError, consistencyProof, verifyConsistency, verifyInclusion } from "./merkle.js";
import { TileError, TileHashReader, fetchBytes, proveFromTiles } from "./tiles.js";

/** `.code` (stable; the UI maps it to catalogue messages):
 *  "bad_key"        the page's log key is missing or not a valid Ed25519 verifier key;
 *  "bad_signature"  the checkpoint is not signed by that key (another key, or a bad signature);
 *  "wrong_log"      the checkpoint is validly signed but for another log (origin);
 *  "bad_checkpoint" the checkpoint note is malformed or oversized;
 *  "bad_proof"      the tiles do not match the signed checkpoint, or do not hold the entry;
 *  "not_in_log"     the signed checkpoint does not (yet) include this entry's position;
 *  "bad_entry"      the status answer's entry has no usable log index or leaf hash;
 *  "inconsistent_log" the log does not extend the earlier checkpoint the page was given
 *                   (`previous`): its history was rewritten, or this page is shown a fork;
 *  "network"        the hub could not be reached or answered with an HTTP error (`.status`). */
export class ReceiptError extends Error {
  constructor(code, message, status = null) {
    super(message);
    this.name = "ReceiptError";
    this.code = code;
    this.status = status;
  }
}

/** Most bytes read for /checkpoint: a note with dozens of witness cosignatures is ~5 kB. */
export const MAX_CHECKPOINT_BYTES = 64 << 10;
const HEX64 = /^[0-9a-f]{64}$/;

function fail(code, message, status = null) {
  throw new ReceiptError(code, message, status);
}

/** Re-throw a lower module's error as a ReceiptError with the code the page shows. */
function translate(err) {
  if (err instanceof ReceiptError) return err;
  if (err instanceof NoteError) {
    const code = {
      bad_signature: "bad_signature",
      no_known_signature: "bad_signature",
      wrong_origin: "wrong_log",
      key_format: "bad_key",
    }[err.code] ?? "bad_checkpoint";
    return new ReceiptError(code, err.message);
  }
  if (err instanceof TileError) {
    if (err.code === "network") return new ReceiptError("network", err.message, err.status);
    return new ReceiptError("bad_proof", err.message);
  }
  if (err instanceof MerkleError) return new ReceiptError("bad_proof", err.message);
  return err; // AbortError and programming errors pass through unchanged
}

/** The log's verifier key the hub filled into the page (`<meta name="ncii-log-key">`). */
export function logKeyFromPage(doc = globalThis.document) {
  const content = doc?.querySelector?.('meta[name="ncii-log-key"]')?.getAttribute("content") ?? "";
  if (content === "") fail("bad_key", "the page carries no log key (meta ncii-log-key is empty)");
  const key = parseLogKey(content);
  return key.text;
}

function parseLogKey(logKey) {
  let key;
  try {
    key = parseVerifierKey(logKey);
  } catch (err) {
    throw translate(err);
  }
  // A log signs its checkpoints with a plain Ed25519 note key (specs/checkpoint.md section 2).
  if (key.alg !== ALG_ED25519) fail("bad_key", "the log key is not an Ed25519 note key");
  return key;
}

/** Fetch `base + "checkpoint"` and verify it with `logKey`; the expected origin is the key's
 *  name (the hub names its log key after its origin) unless `origin` is given.
 *  With `previous` (the note text of a checkpoint verified earlier, e.g. a kept receipt's), the
 *  new checkpoint must extend it: a consistency proof is computed from the new tree's tiles and
 *  checked against the earlier root ("inconsistent_log" if not). An older checkpoint than
 *  `previous` (a cache) is accepted as it is, as the command-line client does.
 *  Returns { origin, size (a Number), rootHash (32 bytes), text (the whole note) }. */
export async function verifiedCheckpoint({ base, logKey, origin, previous, fetch = globalThis.fetch, signal }) {
  const key = parseLogKey(logKey);
  const expected = origin ?? key.name;
  let earlier = null;
  if (previous !== undefined && previous !== null) {
    try {
      earlier = openCheckpoint(new TextEncoder().encode(previous), [key], { origin: expected }).checkpoint;
    } catch (err) {
      if (!(err instanceof NoteError)) throw err;
      fail("bad_checkpoint", `the earlier checkpoint given does not verify with the log key: ${err.message}`);
    }
  }
  let result;
  try {
    const bytes = await fetchBytes({ base, path: "checkpoint", limit: MAX_CHECKPOINT_BYTES, fetch, signal });
    const { checkpoint } = openCheckpoint(bytes, [key], { origin: expected });
    if (checkpoint.size > BigInt(Number.MAX_SAFE_INTEGER)) {
      fail("bad_checkpoint", "the checkpoint's size is beyond what the page handles (2^53 - 1)");
    }
    result = Object.freeze({
      origin: checkpoint.origin,
      size: Number(checkpoint.size),
      rootHash: checkpoint.rootHash,
      text: new TextDecoder().decode(bytes),
    });
  } catch (err) {
    if (err instanceof TileError && err.code === "too_large") {
      throw new ReceiptError("bad_checkpoint", err.message);
    }
    throw translate(err);
  }
  if (earlier !== null && earlier.size <= BigInt(result.size)) {
    const { reader } = readerFor(result, base, fetch, signal);
    let proof;
    try {
      proof = await consistencyProof(earlier.size, result.size, reader);
    } catch (err) {
      throw translate(err); // the new tree's own tiles do not match its root: bad_proof
    }
    try {
      verifyConsistency(earlier.size, result.size, proof, earlier.rootHash, result.rootHash);
    } catch (err) {
      if (!(err instanceof MerkleError)) throw err;
      fail("inconsistent_log", `the log does not extend the earlier checkpoint: ${err.message}`);
    }
  }
  return result;
}

// One tile reader per (checkpoint, base, fetch, signal): the entries of a case share most tiles,
// so checkInclusion calls for one checkpoint fetch each tile once. Held weakly by the checkpoint
// object: it lives exactly as long as the caller keeps that checkpoint.
const readers = new WeakMap();

function readerFor(checkpoint, base, fetch, signal) {
  let perBase = readers.get(checkpoint);
  if (!perBase) readers.set(checkpoint, (perBase = new Map()));
  let got = perBase.get(base);
  if (!got || got.fetch !== fetch || got.signal !== signal) {
    got = {
      fetch,
      signal,
      reader: new TileHashReader({ size: checkpoint.size, rootHash: checkpoint.rootHash, base, fetch, signal }),
      bundles: new Map(),
    };
    perBase.set(base, got);
  }
  return got;
}

function leafBytes(leafHash) {
  if (leafHash instanceof Uint8Array && leafHash.length === 32) return leafHash;
  if (typeof leafHash !== "string" || !HEX64.test(leafHash)) fail("bad_entry", "the leaf hash is not 64 hex digits");
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = parseInt(leafHash.slice(2 * i, 2 * i + 2), 16);
  return out;
}

async function prove({ base, checkpoint, leafIndex, leafHash, fetch, signal }) {
  if (!checkpoint || !(checkpoint.rootHash instanceof Uint8Array) || !Number.isSafeInteger(checkpoint.size)) {
    fail("bad_checkpoint", "checkInclusion needs a checkpoint from verifiedCheckpoint");
  }
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0) fail("bad_entry", "the log index is not a whole number");
  const leaf = leafBytes(leafHash);
  if (leafIndex >= checkpoint.size) fail("not_in_log", "the signed checkpoint does not include this log index yet");
  const { reader, bundles } = readerFor(checkpoint, base, fetch, signal);
  try {
    const proof = await proveFromTiles({ index: leafIndex, leaf, reader, bundles });
    // The proof is built from authenticated tiles; checking it as any verifier would keeps this
    // result independent of how it was computed.
    verifyInclusion(leaf, leafIndex, checkpoint.size, proof, checkpoint.rootHash);
    return proof;
  } catch (err) {
    throw translate(err);
  }
}

/** Check that the leaf with `leafHash` (64 hex digits or 32 bytes) is at `leafIndex` in the log
 *  whose signed checkpoint is `checkpoint` (from verifiedCheckpoint), with a proof computed from
 *  the hub's tiles. Resolves to true; rejects with ReceiptError otherwise. */
export async function checkInclusion({ base, checkpoint, leafIndex, leafHash, fetch = globalThis.fetch, signal }) {
  await prove({ base, checkpoint, leafIndex, leafHash, fetch, signal });
  return true;
}

const hex = (u8) => Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join("");

/** A receipt per entry of a status answer (its `entries`, or the answer itself):
 *  { entry, state: "in-log" | "pending" | "failed", problem: ReceiptError code or null,
 *    receipt: { logIndex, treeSize, proof (hex), checkpoint (note text) } when in the log }.
 *  "pending": not logged yet (waiting or held for review, or beyond the checkpoint fetched);
 *  "failed": rejected by review ("not_in_log") or not provable (see ReceiptError's codes).
 *  The checkpoint is fetched once, and only when some entry has a log index; `previous` is
 *  passed to verifiedCheckpoint (an earlier checkpoint the new one must extend). */
export async function receiptsFor({ base, logKey, entries, origin, previous, fetch = globalThis.fetch, signal }) {
  const list = Array.isArray(entries) ? entries : entries?.entries;
  if (!Array.isArray(list)) fail("bad_entry", "entries must be the status answer's entries");
  let checkpoint = null;
  let checkpointError = null;
  let networkError = null; // after one, the rest are not tried: the person retries later
  const out = [];
  for (const entry of list) {
    const index = entry?.log_index ?? null;
    if (entry?.state === "rejected") {
      out.push({ entry, state: "failed", problem: "not_in_log", receipt: null });
      continue;
    }
    if (index === null) {
      out.push({ entry, state: "pending", problem: null, receipt: null });
      continue;
    }
    if (checkpoint === null && checkpointError === null) {
      try {
        checkpoint = await verifiedCheckpoint({ base, logKey, origin, previous, fetch, signal });
      } catch (err) {
        if (!(err instanceof ReceiptError)) throw err;
        checkpointError = err;
      }
    }
    if (checkpointError || networkError) {
      out.push({ entry, state: "failed", problem: (checkpointError ?? networkError).code, receipt: null });
      continue;
    }
    try {
      const proof = await prove({ base, checkpoint, leafIndex: index, leafHash: entry.leaf_hash, fetch, signal });
      out.push({
        entry,
        state: "in-log",
        problem: null,
        receipt: { logIndex: index, treeSize: checkpoint.size, proof: proof.map(hex), checkpoint: checkpoint.text },
      });
    } catch (err) {
      if (!(err instanceof ReceiptError)) throw err;
      if (err.code === "network") networkError = err;
      // Integrated after the checkpoint fetched here (a cached or lagging copy): not yet provable.
      const state = err.code === "not_in_log" ? "pending" : "failed";
      out.push({ entry, state, problem: state === "failed" ? err.code : null, receipt: null });
    }
  }
  return out;
}
