// C2SP signed notes, note keys and checkpoints for the page: specs/signed-note.md and
// specs/checkpoint.md, the same accepted set as crypto/note.py, crypto/keys.py and
// crypto/checkpoint.py (checked against specs/vectors/note/ and tests/vectors/note/).
//
// Everything here works on bytes from the network, so every rule is strict and every input is
// bounded before it is decoded. A note's text means nothing until openNote has verified it.
import { ed25519 } from "./vendor/@noble/curves/ed25519.js";
import { sha256 } from "./vendor/@noble/hashes/sha2.js";
import { equalBytes } from "./vendor/@noble/curves/utils.js";

/** Every failure here; `.code` is stable: "malformed" | "limit" | "key_format" |
 *  "bad_signature" | "no_known_signature" | "wrong_origin" (crypto/errors.py, in the same order:
 *  MalformedError, LimitExceededError, KeyFormatError, InvalidSignatureError,
 *  NoKnownSignatureError, WrongPurposeError). */
export class NoteError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "NoteError";
    this.code = code;
  }
}

/** Largest note accepted by default (bytes, text and signatures together). */
export const DEFAULT_MAX_NOTE_SIZE = 1 << 20;
/** Most signature lines accepted by default (Go's sumdb/note also stops at 100). */
export const DEFAULT_MAX_SIGNATURES = 100;
export const ALG_ED25519 = 0x01;
export const ALG_COSIGNATURE_V1 = 0x04;
/** A checkpoint size is a uint64 (C2SP); Merkle proofs stop at 2^63-1 (web/merkle.js). */
export const MAX_CHECKPOINT_SIZE = 2n ** 64n - 1n;

const MAX_TIMESTAMP = 2n ** 63n - 1n;
const SIG_PREFIX = [0xe2, 0x80, 0x94, 0x20]; // em dash (U+2014), space
const NL = 0x0a;
const utf8 = new TextEncoder();
// fatal: overlong forms and encoded surrogates are errors; ignoreBOM: a U+FEFF is kept as text.
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// Python's str.isspace beyond ASCII control characters (those are refused on their own), so a
// key name accepted here is accepted by crypto/keys.py and the reverse. Not JS's \s: that has
// U+FEFF and lacks U+0085.
const SPACE = /[\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/u;
const CONTROL = /[\u0000-\u001f]/u;
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEX8 = /^[0-9a-f]{8}$/;
const SIZE = /^(?:0|[1-9][0-9]{0,19})$/;

function fail(code, message) {
  throw new NoteError(code, message);
}

function asBytes(data, what) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return fail("malformed", `${what} must be bytes`);
}

/** Standard padded base64 (RFC 4648 section 4), canonical only: re-encoding must give the same
 *  characters (no whitespace, exact padding, zero padding bits), as crypto/_common.py. */
export function b64decodeCanonical(text, what) {
  if (typeof text !== "string" || !B64.test(text)) fail("malformed", `${what}: not valid base64`);
  const binary = atob(text);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  if (b64encode(out) !== text) {
    fail("malformed", `${what}: base64 is not in canonical form (padding or padding bits)`);
  }
  return out;
}

export function b64encode(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function decodeUtf8(bytes, what) {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return fail("malformed", `${what} is not valid UTF-8`);
  }
}

/** Note character rules: no ASCII control byte but newline (checked on bytes: UTF-8
 *  multi-byte sequences never contain one), then valid UTF-8. */
function decodeNoteBytes(bytes) {
  for (const b of bytes) {
    if (b < 0x20 && b !== NL) fail("malformed", "note contains an ASCII control character other than newline");
  }
  return decodeUtf8(bytes, "note");
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Key names: non-empty, no '+', no white space (as Python's str.isspace), no control character. */
export function checkKeyName(name) {
  if (typeof name !== "string" || name === "") fail("key_format", "key name is empty");
  if (name.includes("+")) fail("key_format", "key name contains '+'");
  if (CONTROL.test(name) || SPACE.test(name) || /[\u0020]/.test(name)) {
    fail("key_format", "key name contains white space or a control character");
  }
  if (!name.isWellFormed()) fail("key_format", "key name is not valid UTF-8");
}

/** Key ID: the first 4 bytes, big-endian, of SHA-256(name || 0x0A || alg || public key). */
export function computeKeyId(name, alg, publicKey) {
  checkKeyName(name);
  const d = sha256(concat(utf8.encode(name), Uint8Array.of(NL, alg), publicKey));
  return ((d[0] << 24) | (d[1] << 16) | (d[2] << 8) | d[3]) >>> 0;
}

/** Parse a verifier key string `<name>+<8 hex key ID>+<base64(type || 32-byte key)>`; the key ID
 *  must be the one computed from name and key. Types 0x01 (Ed25519) and 0x04 (cosignature/v1).
 *  Returns { name, alg, keyId, publicKey, text }. */
export function parseVerifierKey(data) {
  let text = data;
  if (data instanceof Uint8Array) {
    try {
      text = strictDecoder.decode(data);
    } catch {
      fail("key_format", "verifier key is not valid UTF-8");
    }
  }
  if (typeof text !== "string") fail("key_format", "verifier key must be text");
  if (text.length > 1000) fail("key_format", "verifier key is far too long");
  const first = text.indexOf("+");
  const second = first < 0 ? -1 : text.indexOf("+", first + 1);
  if (second < 0) fail("key_format", "verifier key: expected name+keyid+key");
  const name = text.slice(0, first);
  const hexId = text.slice(first + 1, second);
  checkKeyName(name);
  if (!HEX8.test(hexId)) fail("key_format", "verifier key: key ID must be 8 lowercase hex digits");
  let raw;
  try {
    raw = b64decodeCanonical(text.slice(second + 1), "verifier key");
  } catch {
    fail("key_format", "verifier key: key is not canonical base64");
  }
  if (raw.length !== 33) fail("key_format", "verifier key: key must be 1 type byte and 32 key bytes");
  const alg = raw[0];
  if (alg !== ALG_ED25519 && alg !== ALG_COSIGNATURE_V1) {
    fail("key_format", `verifier key: unsupported signature type 0x${alg.toString(16).padStart(2, "0")}`);
  }
  const publicKey = raw.slice(1);
  const keyId = computeKeyId(name, alg, publicKey);
  if (keyId !== parseInt(hexId, 16)) {
    fail("key_format", "verifier key: key ID does not match the name and key");
  }
  return Object.freeze({ name, alg, keyId, publicKey, text });
}

function lastIndexOfBlankLine(bytes) {
  for (let i = bytes.length - 2; i >= 0; i--) {
    if (bytes[i] === NL && bytes[i + 1] === NL) return i;
  }
  return -1;
}

function parseLine(line) {
  for (let i = 0; i < SIG_PREFIX.length; i++) {
    if (line[i] !== SIG_PREFIX[i]) {
      fail("malformed", "signature line must start with an em dash (U+2014) and a space");
    }
  }
  const rest = line.subarray(SIG_PREFIX.length);
  const space = rest.indexOf(0x20);
  if (space < 0) fail("malformed", "signature line must be '— <name> <base64>'");
  const name = decodeUtf8(rest.subarray(0, space), "signature line");
  try {
    checkKeyName(name);
  } catch {
    fail("malformed", "signature line has an invalid key name");
  }
  const b64 = decodeUtf8(rest.subarray(space + 1), "signature line");
  const raw = b64decodeCanonical(b64, "signature");
  if (raw.length < 5) fail("malformed", "signature must be a 4-byte key ID and at least one signature byte");
  const keyId = ((raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) >>> 0;
  return Object.freeze({ name, keyId, signature: raw.slice(4) });
}

/** Split untrusted note bytes into text and signature lines, checking every syntax rule.
 *  Nothing is verified: do not act on the text. Limits come before any decoding. */
export function parseNote(
  data,
  { maxSize = DEFAULT_MAX_NOTE_SIZE, maxSignatures = DEFAULT_MAX_SIGNATURES } = {},
) {
  const bytes = asBytes(data, "note");
  if (bytes.length > maxSize) fail("limit", `note is larger than ${maxSize} bytes`);
  const split = lastIndexOfBlankLine(bytes);
  const block = split >= 0 ? bytes.subarray(split + 2) : new Uint8Array(0);
  let lines = 0;
  for (const b of block) if (b === NL) lines++;
  if (lines > maxSignatures) fail("limit", `note has more than ${maxSignatures} signatures`);
  decodeNoteBytes(bytes);
  if (split < 0) fail("malformed", "note has no blank line between text and signatures");
  if (block.length === 0) fail("malformed", "note has no signature lines");
  if (block[block.length - 1] !== NL) fail("malformed", "note must end with a newline");
  const signatures = [];
  let start = 0;
  const body = block.subarray(0, block.length - 1);
  for (let i = 0; i <= body.length; i++) {
    if (i === body.length || body[i] === NL) {
      signatures.push(parseLine(body.subarray(start, i)));
      start = i + 1;
    }
  }
  return Object.freeze({ text: bytes.slice(0, split + 1), signatures: Object.freeze(signatures) });
}

function u64(bytes) {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(b);
  return v;
}

/** Whether `signature` (the bytes after the key ID) by `key` verifies over the note `text`.
 *  Ed25519 as RFC 8032 with canonical encodings and no small-order key (as libsodium, which
 *  the Python side uses); cosignature/v1 signs "cosignature/v1\ntime <T>\n" || text. */
function verifies(key, text, signature) {
  let message = text;
  let raw = signature;
  if (key.alg === ALG_COSIGNATURE_V1) {
    if (signature.length !== 72) return false;
    const timestamp = u64(signature.subarray(0, 8));
    if (timestamp > MAX_TIMESTAMP) return false;
    message = concat(utf8.encode(`cosignature/v1\ntime ${timestamp}\n`), text);
    raw = signature.subarray(8);
  } else if (signature.length !== 64) {
    return false;
  }
  try {
    return ed25519.verify(raw, message, key.publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/** Parse and verify a note against trusted keys (parsed with parseVerifierKey).
 *  Lines by other keys are kept and ignored; every line by a trusted key must verify, or the
 *  whole note is refused ("bad_signature"); none by a trusted key: "no_known_signature".
 *  Returns { text (bytes), signatures, verifiedBy (trusted keys that verified, in order) }. */
export function openNote(data, keys, limits = {}) {
  const index = new Map();
  for (const key of keys) {
    if (!key || typeof key.name !== "string" || !(key.publicKey instanceof Uint8Array)) {
      fail("key_format", "trusted keys must come from parseVerifierKey");
    }
    const slot = `${key.keyId}\u0000${key.name}`;
    const had = index.get(slot);
    if (had && (had.alg !== key.alg || !equalBytes(had.publicKey, key.publicKey))) {
      fail("key_format", "two trusted keys share a name and key ID; cannot tell apart");
    }
    index.set(slot, key);
  }
  const note = parseNote(data, limits);
  const verified = new Map();
  for (const sig of note.signatures) {
    const slot = `${sig.keyId}\u0000${sig.name}`;
    const key = index.get(slot);
    if (key === undefined) continue;
    if (!verifies(key, note.text, sig.signature)) {
      fail("bad_signature", `signature by ${key.name} does not verify`);
    }
    if (!verified.has(slot)) verified.set(slot, key);
  }
  if (verified.size === 0) fail("no_known_signature", "note carries no signature by a trusted key");
  return Object.freeze({ text: note.text, signatures: note.signatures, verifiedBy: [...verified.values()] });
}

function checkLine(line, what) {
  if (line === "") fail("malformed", `checkpoint ${what} must be a non-empty line`);
}

/** Decode checkpoint note text (specs/checkpoint.md section 1), refusing every other spelling.
 *  Returns { origin, size (BigInt, up to 2^64-1), rootHash (32 bytes), extensions }. */
export function parseCheckpoint(data) {
  const bytes = asBytes(data, "checkpoint text");
  if (bytes.length === 0 || bytes[bytes.length - 1] !== NL) {
    fail("malformed", "note text must be non-empty and end with a newline");
  }
  const text = decodeNoteBytes(bytes);
  const lines = text.slice(0, -1).split("\n");
  if (lines.length < 3) fail("malformed", "checkpoint needs origin, size and root hash lines");
  const [origin, sizeText, rootText, ...extensions] = lines;
  checkLine(origin, "origin");
  if (!SIZE.test(sizeText)) fail("malformed", "checkpoint size is not a decimal without sign or leading zeros");
  const size = BigInt(sizeText);
  if (size > MAX_CHECKPOINT_SIZE) fail("malformed", "checkpoint size does not fit in 64 bits");
  const rootHash = b64decodeCanonical(rootText, "checkpoint root hash");
  if (rootHash.length !== 32) fail("malformed", "checkpoint root hash must be 32 bytes");
  for (const ext of extensions) checkLine(ext, "extension line");
  return Object.freeze({ origin, size, rootHash, extensions: Object.freeze(extensions) });
}

/** Verify a signed checkpoint note, decode it, and check it is for log `origin` (byte for
 *  byte; there is no default). Returns { checkpoint, note }. */
export function openCheckpoint(data, keys, { origin, ...limits }) {
  if (typeof origin !== "string" || origin === "") fail("wrong_origin", "the expected origin is required");
  const note = openNote(data, keys, limits);
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== origin) fail("wrong_origin", "checkpoint is for another log (origin does not match)");
  return Object.freeze({ checkpoint, note });
}
