// Signed envelopes in the browser: the exact bytes of crypto/envelope.py (specs/envelope.md, v1).
//
//   import { seal } from "./envelope.js";
//   const bytes = seal(deriveCase(secret), "status-query", body, timestamp, nonce);
//
// seal() is deterministic (RFC 8032 Ed25519): the same key, purpose, body, time and nonce give
// the same bytes as the Python client, byte for byte (test/envelope.test.mjs runs the vectors).
// openEnvelope() verifies one as the hub does (section 3.3); the page uses it only to check a
// remembered envelope before sending it again. Errors are EnvelopeError with a stable `.code`:
// "malformed" | "wrong_purpose" | "limit" | "invalid_signature" | "stale".
import { ed25519 } from "./vendor/@noble/curves/ed25519.js";

export const MAGIC = new Uint8Array([0x4e, 0x43, 0x45, 0x56]); // "NCEV"
export const VERSION = 1;
export const NONCE_SIZE = 16;
export const PUBLIC_KEY_SIZE = 32;
export const SIGNATURE_SIZE = 64;
export const DEFAULT_MAX_BODY = 1 << 20;
export const DEFAULT_WINDOW_SECONDS = 300;
export const Purpose = Object.freeze({
  SUBMISSION: "submission",
  WITHDRAWAL: "withdrawal",
  STATUS_QUERY: "status-query",
  PARTNER_REQUEST: "partner-request",
});
const SIGNATURE_DOMAIN = new TextEncoder().encode("ncii-exchange/envelope/v1\0");
const MAX_PURPOSE_LEN = 64;
const MAX_TIMESTAMP = 2n ** 63n - 1n;
const MAX_BODY_LEN_FIELD = 2 ** 32 - 1;
const PURPOSE_RE = /^[a-z0-9][a-z0-9./-]{0,63}$/;

export class EnvelopeError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "EnvelopeError";
    this.code = code;
  }
}

function purposeBytes(purpose) {
  if (typeof purpose !== "string" || !PURPOSE_RE.test(purpose)) {
    throw new EnvelopeError("malformed", "purpose must be 1-64 characters of a-z 0-9 . / - starting with a letter or digit");
  }
  return new TextEncoder().encode(purpose);
}

function timestampBig(timestamp) {
  const t = typeof timestamp === "bigint" ? timestamp : Number.isSafeInteger(timestamp) ? BigInt(timestamp) : -1n;
  if (t < 0n || t > MAX_TIMESTAMP) {
    throw new EnvelopeError("malformed", "timestamp must be whole unix seconds from 0 to 2**63-1");
  }
  return t;
}

/** The signer of envelopes: deriveCase()'s result, or any {publicKey, sign(message)}. */
function checkSigner(signer) {
  if (!signer || !(signer.publicKey instanceof Uint8Array) || signer.publicKey.length !== PUBLIC_KEY_SIZE || typeof signer.sign !== "function") {
    throw new EnvelopeError("malformed", "the signer must have a 32-byte publicKey and sign(message)");
  }
}

/**
 * Sign `body` (bytes) for `purpose` at `timestamp` (unix seconds) with `nonce` (16 bytes): the
 * envelope's bytes, laid out as section 3.1 says, signature over domain || everything before it.
 */
export function seal(signer, purpose, body, timestamp, nonce) {
  checkSigner(signer);
  const purposeRaw = purposeBytes(purpose);
  const t = timestampBig(timestamp);
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_SIZE) {
    throw new EnvelopeError("malformed", `nonce must be ${NONCE_SIZE} bytes`);
  }
  if (!(body instanceof Uint8Array)) throw new EnvelopeError("malformed", "the body is bytes (Uint8Array)");
  if (body.length > MAX_BODY_LEN_FIELD) throw new EnvelopeError("limit", "body larger than 2**32-1 bytes");
  const headLength = 6 + purposeRaw.length + PUBLIC_KEY_SIZE + 8 + NONCE_SIZE + 4;
  const out = new Uint8Array(headLength + body.length + SIGNATURE_SIZE);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[4] = VERSION;
  out[5] = purposeRaw.length;
  let pos = 6;
  out.set(purposeRaw, pos);
  pos += purposeRaw.length;
  out.set(signer.publicKey, pos);
  pos += PUBLIC_KEY_SIZE;
  view.setBigUint64(pos, t, false);
  pos += 8;
  out.set(nonce, pos);
  pos += NONCE_SIZE;
  view.setUint32(pos, body.length, false);
  pos += 4;
  out.set(body, pos);
  pos += body.length;
  const signed = new Uint8Array(SIGNATURE_DOMAIN.length + pos);
  signed.set(SIGNATURE_DOMAIN, 0);
  signed.set(out.subarray(0, pos), SIGNATURE_DOMAIN.length);
  const signature = signer.sign(signed);
  if (!(signature instanceof Uint8Array) || signature.length !== SIGNATURE_SIZE) {
    throw new EnvelopeError("malformed", "the signer returned no 64-byte signature");
  }
  out.set(signature, pos);
  return out;
}

/** A fresh random nonce (the only randomness envelopes need). */
export function newNonce() {
  return globalThis.crypto.getRandomValues(new Uint8Array(NONCE_SIZE));
}

/** seal() now, with a fresh nonce; `now` (unix seconds) defaults to this device's clock. */
export function sealNow(signer, purpose, body, now = Math.floor(Date.now() / 1000)) {
  return seal(signer, purpose, body, now, newNonce());
}

/** Every field's place, nothing interpreted beyond its length (section 3.3 step 2). */
function parseLayout(data, maxBody) {
  const n = data.length;
  if (n < 6) throw new EnvelopeError("malformed", "envelope truncated before its header");
  if (data[0] !== MAGIC[0] || data[1] !== MAGIC[1] || data[2] !== MAGIC[2] || data[3] !== MAGIC[3]) {
    throw new EnvelopeError("malformed", "not a signed envelope (bad magic)");
  }
  if (data[4] !== VERSION) throw new EnvelopeError("wrong_purpose", `envelope version ${data[4]} is not supported`);
  const plen = data[5];
  if (plen < 1 || plen > MAX_PURPOSE_LEN) throw new EnvelopeError("malformed", "envelope purpose length must be 1-64");
  let pos = 6;
  if (n < pos + plen + PUBLIC_KEY_SIZE + 8 + NONCE_SIZE + 4) {
    throw new EnvelopeError("malformed", "envelope truncated inside its header");
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const purpose = data.slice(pos, pos + plen);
  pos += plen;
  const publicKey = data.slice(pos, pos + PUBLIC_KEY_SIZE);
  pos += PUBLIC_KEY_SIZE;
  const timestamp = view.getBigUint64(pos, false);
  if (timestamp > MAX_TIMESTAMP) throw new EnvelopeError("malformed", "envelope timestamp is above 2**63-1");
  pos += 8;
  const nonce = data.slice(pos, pos + NONCE_SIZE);
  pos += NONCE_SIZE;
  const bodyLength = view.getUint32(pos, false);
  pos += 4;
  if (bodyLength > maxBody) throw new EnvelopeError("limit", `envelope body of ${bodyLength} bytes exceeds the limit`);
  const expected = pos + bodyLength + SIGNATURE_SIZE;
  if (n < expected) throw new EnvelopeError("malformed", "envelope truncated (body or signature missing)");
  if (n > expected) throw new EnvelopeError("malformed", "trailing data after the envelope signature");
  return { purpose, publicKey, timestamp, nonce, bodyStart: pos, bodyEnd: pos + bodyLength };
}

/** The fields an envelope claims, UNVERIFIED (to choose what to do with it, never to trust). */
export function peekEnvelope(data, maxBody = DEFAULT_MAX_BODY) {
  if (!(data instanceof Uint8Array)) throw new EnvelopeError("malformed", "an envelope is bytes");
  const l = parseLayout(data, maxBody);
  return {
    purpose: new TextDecoder().decode(l.purpose),
    publicKey: l.publicKey,
    timestamp: Number(l.timestamp),
    nonce: l.nonce,
    body: data.slice(l.bodyStart, l.bodyEnd),
  };
}

/**
 * Verify an envelope as the hub does (section 3.3, in its order) and return {purpose,
 * publicKey, timestamp, nonce, body}; the caller still checks the key is the one it expects.
 */
export function openEnvelope(data, { expectedPurpose, now, windowSeconds = DEFAULT_WINDOW_SECONDS, maxBody = DEFAULT_MAX_BODY }) {
  if (!(data instanceof Uint8Array)) throw new EnvelopeError("malformed", "an envelope is bytes");
  if (data.length > maxBody + 6 + MAX_PURPOSE_LEN + PUBLIC_KEY_SIZE + 28 + SIGNATURE_SIZE) {
    throw new EnvelopeError("limit", "envelope larger than allowed");
  }
  const l = parseLayout(data, maxBody);
  const signed = new Uint8Array(SIGNATURE_DOMAIN.length + l.bodyEnd);
  signed.set(SIGNATURE_DOMAIN, 0);
  signed.set(data.subarray(0, l.bodyEnd), SIGNATURE_DOMAIN.length);
  let ok = false;
  try {
    ok = ed25519.verify(data.subarray(l.bodyEnd), signed, l.publicKey, { zip215: false });
  } catch {
    ok = false; // a key that is not a point
  }
  if (!ok) throw new EnvelopeError("invalid_signature", "envelope signature does not verify");
  const purpose = new TextDecoder().decode(l.purpose);
  if (!PURPOSE_RE.test(purpose)) throw new EnvelopeError("malformed", "envelope purpose has characters outside a-z 0-9 . / -");
  if (purpose !== expectedPurpose) throw new EnvelopeError("wrong_purpose", "envelope made for another purpose");
  const clock = typeof now === "bigint" ? now : BigInt(now);
  const skew = clock > l.timestamp ? clock - l.timestamp : l.timestamp - clock;
  if (skew > BigInt(windowSeconds)) throw new EnvelopeError("stale", "envelope timestamp outside the window");
  return { purpose, publicKey: l.publicKey, timestamp: Number(l.timestamp), nonce: l.nonce, body: data.slice(l.bodyStart, l.bodyEnd) };
}
