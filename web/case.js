// Case keys in the browser, exactly as crypto/case.py (specs/case-keys.md, v1): a 16-byte case
// secret, its recovery code (Crockford base32, two Reed-Solomon check characters over GF(32)),
// the Ed25519 case key (seed = HKDF-SHA256 of the secret) and the case id.
//
//   import { newCaseSecret, encodeRecoveryCode, parseRecoveryCode, deriveCase } from "./case.js";
//   const secret = newCaseSecret();
//   const code = encodeRecoveryCode(secret);         // shown once to the person
//   const again = parseRecoveryCode(typed);          // lenient; a typo throws RecoveryCodeError
//   const { caseId, publicKey, sign } = deriveCase(again);
//
// Errors are typed with a stable `.code`; RecoveryCodeError also names the `.group` (1..7) that
// most likely holds a typo. No message ever repeats a character of the input (it is a secret).
// Pure: no DOM, no network, no storage; runs in pages, Workers and Node.
import { ed25519 } from "./vendor/@noble/curves/ed25519.js";
import { hkdf } from "./vendor/@noble/hashes/hkdf.js";
import { sha256 } from "./vendor/@noble/hashes/sha2.js";

export const SECRET_SIZE = 16;
export const CODE_LENGTH = 28; // 26 data + 2 check characters
export const CASE_ID_LENGTH = 16; // 80 bits
const DATA_CHARS = 26; // ceil(128 / 5); the first character carries 3 bits (0-7)
const GROUP_SIZE = 4;
const GROUPS = CODE_LENGTH / GROUP_SIZE;
const MAX_CODE_INPUT = 200;
const MAX_CASE_ID_INPUT = 64;
const ascii = (text) => new TextEncoder().encode(text);
const CASE_KEY_SALT = ascii("ncii-exchange/case/v1");
const CASE_KEY_INFO = ascii("ncii-exchange/case-key/v1");
const CASE_ID_DOMAIN = ascii("ncii-exchange/case-id/v1\0");

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"; // Crockford: no I, L, O, U
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));
DECODE.set("O", 0).set("I", 1).set("L", 1);
const IGNORED = new Set([" ", "-", "\t"]);

export class RecoveryCodeError extends Error {
  /** code: "empty" | "length" | "character" | "check"; group: 1-based group, or null. */
  constructor(code, message, group = null) {
    super(message);
    this.name = "RecoveryCodeError";
    this.code = code;
    this.group = group;
  }
}

export class CaseError extends Error {
  /** code: "secret" (not 16 bytes) | "case_id" (not a case id) | "public_key". */
  constructor(code, message) {
    super(message);
    this.name = "CaseError";
    this.code = code;
  }
}

// -- hex (the only text form of bytes these modules use) ---------------------------------------

export function toHex(bytes) {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Lowercase hex to bytes; anything else (odd length, upper case, other characters) is null. */
export function fromHex(text) {
  if (typeof text !== "string" || text.length % 2 || !/^[0-9a-f]*$/.test(text)) return null;
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

// -- GF(32) = GF(2)[x] / (x^5 + x^2 + 1), alpha = x (2) primitive ------------------------------

const EXP = new Array(62).fill(0); // doubled so EXP[log a + log b] needs no reduction
const LOG = new Array(32).fill(0);
{
  let value = 1;
  for (let i = 0; i < 31; i++) {
    EXP[i] = EXP[i + 31] = value;
    LOG[value] = i;
    value <<= 1;
    if (value & 0x20) value ^= 0x25;
  }
}
const mul = (a, b) => (a === 0 || b === 0 ? 0 : EXP[LOG[a] + LOG[b]]);
const div = (a, b) => (a === 0 ? 0 : EXP[(((LOG[a] - LOG[b]) % 31) + 31) % 31]);

/** S0 = sum s_i, S1 = sum s_i * alpha^i (addition is XOR). */
function syndromes(symbols) {
  let s0 = 0;
  let s1 = 0;
  symbols.forEach((c, i) => {
    s0 ^= c;
    s1 ^= mul(c, EXP[i]);
  });
  return [s0, s1];
}

/** The check symbols at positions 26, 27 that make both syndromes zero (section 3.2). */
function checkSymbols(data) {
  const [s0, s1] = syndromes(data);
  const a26 = EXP[DATA_CHARS];
  const a27 = EXP[DATA_CHARS + 1];
  const c27 = div(s1 ^ mul(a26, s0), a26 ^ a27);
  return [s0 ^ c27, c27];
}

const isCode = (symbols) => {
  const [s0, s1] = syndromes(symbols);
  return symbols[0] <= 7 && s0 === 0 && s1 === 0;
};

/** The group one substitution or adjacent swap most likely sits in (section 3.4), or null. */
function typoGroup(s0, s1, symbols) {
  if (s0 !== 0) {
    if (s1 === 0) return null;
    const position = LOG[div(s1, s0)];
    return position < CODE_LENGTH ? Math.floor(position / GROUP_SIZE) + 1 : null;
  }
  const factor = EXP[1] ^ 1;
  const groups = new Set();
  for (let i = 0; i < CODE_LENGTH - 1; i++) {
    if (mul(mul(symbols[i] ^ symbols[i + 1], EXP[i]), factor) === s1) {
      groups.add(Math.floor(i / GROUP_SIZE) + 1);
    }
  }
  return groups.size === 1 ? [...groups][0] : null;
}

/** For one character too many or too few: the one group where deleting or inserting one
 * character gives a valid code, if exactly one does. */
function lengthErrorGroup(symbols) {
  const groups = new Set();
  if (symbols.length === CODE_LENGTH + 1) {
    for (let i = 0; i < symbols.length; i++) {
      if (isCode([...symbols.slice(0, i), ...symbols.slice(i + 1)])) {
        groups.add(Math.min(Math.floor(i / GROUP_SIZE) + 1, GROUPS));
      }
    }
  } else if (symbols.length === CODE_LENGTH - 1) {
    for (let i = 0; i < CODE_LENGTH; i++) {
      for (let value = 0; value < 32; value++) {
        if (isCode([...symbols.slice(0, i), value, ...symbols.slice(i)])) {
          groups.add(Math.floor(i / GROUP_SIZE) + 1);
        }
      }
    }
  }
  return groups.size === 1 ? [...groups][0] : null;
}

// -- secret and recovery code ------------------------------------------------------------------

function checkSecret(secret) {
  if (!(secret instanceof Uint8Array) || secret.length !== SECRET_SIZE) {
    throw new CaseError("secret", `a case secret is exactly ${SECRET_SIZE} bytes`);
  }
}

/** A fresh case secret: 16 bytes from the platform's cryptographic generator. */
export function newCaseSecret() {
  return globalThis.crypto.getRandomValues(new Uint8Array(SECRET_SIZE));
}

/** "XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX": 26 data and 2 check characters (section 3.1). */
export function encodeRecoveryCode(secret) {
  checkSecret(secret);
  let value = 0n;
  for (const b of secret) value = (value << 8n) | BigInt(b);
  const data = [];
  for (let i = 0; i < DATA_CHARS; i++) {
    data.push(Number((value >> BigInt(5 * (DATA_CHARS - 1 - i))) & 31n));
  }
  const text = [...data, ...checkSymbols(data)].map((s) => ALPHABET[s]).join("");
  const groups = [];
  for (let i = 0; i < CODE_LENGTH; i += GROUP_SIZE) groups.push(text.slice(i, i + GROUP_SIZE));
  return groups.join("-");
}

/**
 * The secret of a recovery code as typed or read aloud: case, spaces, tabs and dashes do not
 * matter, O reads as 0 and I, L as 1 (section 3.3). A typo throws RecoveryCodeError naming the
 * group to check when it can be told.
 */
export function parseRecoveryCode(text) {
  if (typeof text !== "string") throw new RecoveryCodeError("empty", "a recovery code is text");
  const chars = Array.from(text); // code points, as Python counts them
  if (chars.length > MAX_CODE_INPUT) {
    throw new RecoveryCodeError("length", "this is far too long to be a recovery code");
  }
  const symbols = [];
  for (const ch of chars) {
    if (IGNORED.has(ch)) continue;
    const value = ch.charCodeAt(0) < 128 && ch.length === 1 ? DECODE.get(ch.toUpperCase()) : undefined;
    if (value === undefined) {
      // Never echo the character: it may be part of the secret.
      const at = Math.floor(symbols.length / GROUP_SIZE) + 1;
      throw new RecoveryCodeError(
        "character",
        `a character in group ${at} is not used in recovery codes (letters and digits only; there is no U)`,
        at <= GROUPS ? at : null,
      );
    }
    symbols.push(value);
  }
  if (symbols.length !== CODE_LENGTH) {
    if (symbols.length === 0) throw new RecoveryCodeError("empty", "no recovery code was given");
    const group = lengthErrorGroup(symbols);
    throw new RecoveryCodeError(
      "length",
      `a recovery code has ${CODE_LENGTH} characters in 7 groups of 4; this one has ${symbols.length}` +
        (group === null ? "" : ` (check group ${group})`),
      group,
    );
  }
  const [s0, s1] = syndromes(symbols);
  if (s0 || s1) {
    const group = typoGroup(s0, s1, symbols);
    throw new RecoveryCodeError(
      "check",
      "the recovery code has a typo" + (group === null ? "" : ` (check group ${group})`),
      group,
    );
  }
  if (symbols[0] > 7) {
    throw new RecoveryCodeError("check", "this is not a recovery code (first character out of range)", 1);
  }
  let value = 0n;
  for (const s of symbols.slice(0, DATA_CHARS)) value = (value << 5n) | BigInt(s);
  const secret = new Uint8Array(SECRET_SIZE);
  for (let i = SECRET_SIZE - 1; i >= 0; i--) {
    secret[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return secret;
}

// -- case key and id ---------------------------------------------------------------------------

/** The 32-byte Ed25519 seed of a case: HKDF-SHA256(secret, salt, info, 32) (section 4). */
export function caseSeed(secret) {
  checkSecret(secret);
  return hkdf(sha256, secret, CASE_KEY_SALT, CASE_KEY_INFO, 32);
}

/** 16 Crockford base32 characters: the first 80 bits of SHA-256(domain || public key). */
export function caseIdOf(publicKey) {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) {
    throw new CaseError("public_key", "a case public key is 32 bytes");
  }
  const digest = sha256(new Uint8Array([...CASE_ID_DOMAIN, ...publicKey]));
  let value = 0n;
  for (const b of digest.subarray(0, 10)) value = (value << 8n) | BigInt(b);
  let out = "";
  for (let i = 0; i < CASE_ID_LENGTH; i++) {
    out += ALPHABET[Number((value >> BigInt(5 * (CASE_ID_LENGTH - 1 - i))) & 31n)];
  }
  return out;
}

/** The canonical case id for one typed by a person (case, dashes, spaces, O/I/L ignored). */
export function parseCaseId(text) {
  if (typeof text !== "string" || Array.from(text).length > MAX_CASE_ID_INPUT) {
    throw new CaseError("case_id", "a case id is 16 characters");
  }
  let out = "";
  for (const ch of text) {
    if (IGNORED.has(ch)) continue;
    const value = ch.charCodeAt(0) < 128 && ch.length === 1 ? DECODE.get(ch.toUpperCase()) : undefined;
    if (value === undefined) throw new CaseError("case_id", "a case id uses only Crockford base32 characters");
    out += ALPHABET[value];
  }
  if (out.length !== CASE_ID_LENGTH) {
    throw new CaseError("case_id", `a case id is ${CASE_ID_LENGTH} characters, not ${out.length}`);
  }
  return out;
}

/**
 * Everything about the case key that follows from the secret: the case id, the public key and
 * sign(message) (deterministic RFC 8032 Ed25519). The seed stays inside this closure.
 */
export function deriveCase(secret) {
  const seed = caseSeed(secret);
  const publicKey = ed25519.getPublicKey(seed);
  return Object.freeze({
    caseId: caseIdOf(publicKey),
    publicKey,
    sign: (message) => ed25519.sign(message, seed),
  });
}
