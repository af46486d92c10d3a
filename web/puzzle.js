// The case puzzle (specs/case-puzzle.md): what a browser solves before a case's first
// submission. Same bytes as crypto/puzzle.py (checked against specs/vectors/case-puzzle/).
//
//   import { parseChallenge, solve, encodeSolution, HEADER_NAME } from "./puzzle.js";
//   const answer = await (await fetch(hub + "/v1/case-puzzle")).json();
//   const challenge = parseChallenge(fromHex(answer.challenge));
//   const nonce = await solve(challenge, casePublicKey, { onProgress: ({ done, expected }) => ...,
//                                                          signal });
//   headers[HEADER_NAME] = encodeSolution(challenge, nonce);
//
// Worker-friendly: no DOM, no globals; solve() yields to the event loop every few tens of
// milliseconds so an AbortSignal (or a Worker message) can stop it. Failures throw PuzzleError
// with a stable `code`: "malformed" (a challenge this client does not accept) or "cancelled".
import { scrypt } from "./vendor/@noble/hashes/scrypt.js";

export const HEADER_NAME = "NCII-Case-Puzzle";
export const CHALLENGE_SIZE = 29; // version, epoch (u64), difficulty, log2 N, r, p, MAC (16)
export const NONCE_SIZE = 8;
export const PUBLIC_KEY_SIZE = 32;
const SALT = new TextEncoder().encode("ncii-exchange/case-puzzle/v1");
const MAX_DIFFICULTY = 32;
const MAX_LOG2_N = 20;
const MAX_R = 32;
const MAX_P = 16;
// A hostile hub must not make a phone allocate without bound (crypto.puzzle.MAX_MEMORY).
const MAX_MEMORY = 64 * 1024 * 1024;
const MAX_NONCE = Number.MAX_SAFE_INTEGER;

export class PuzzleError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "PuzzleError";
    this.code = code;
  }
}

export function fromHex(text) {
  if (typeof text !== "string" || text.length % 2 || !/^[0-9a-f]*$/.test(text)) {
    throw new PuzzleError("malformed", "expected lowercase hex");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// The 29 challenge bytes as issued by the hub, with their fields read and bounds checked.
export function parseChallenge(bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== CHALLENGE_SIZE) {
    throw new PuzzleError("malformed", `a puzzle challenge is exactly ${CHALLENGE_SIZE} bytes`);
  }
  if (bytes[0] !== 1) throw new PuzzleError("malformed", `unknown challenge version ${bytes[0]}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const epoch = view.getBigUint64(1, false);
  const [difficulty, log2N, r, p] = [bytes[9], bytes[10], bytes[11], bytes[12]];
  if (epoch > 2n ** 63n - 1n) throw new PuzzleError("malformed", "epoch out of range");
  if (difficulty > MAX_DIFFICULTY || log2N < 1 || log2N > MAX_LOG2_N) {
    throw new PuzzleError("malformed", "puzzle difficulty or N out of range");
  }
  if (r < 1 || r > MAX_R || p < 1 || p > MAX_P || 128 * r * 2 ** log2N > MAX_MEMORY) {
    throw new PuzzleError("malformed", "puzzle scrypt parameters out of range");
  }
  return { bytes: bytes.slice(), epoch, difficulty, log2N, r, p };
}

// scrypt's password: challenge (29) || case public key (32) || nonce (u64 big-endian).
export function puzzleInput(challenge, publicKey, nonce) {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== PUBLIC_KEY_SIZE) {
    throw new PuzzleError("malformed", `a case public key is ${PUBLIC_KEY_SIZE} bytes`);
  }
  if (!Number.isSafeInteger(nonce) || nonce < 0) {
    throw new PuzzleError("malformed", "the nonce must be a non-negative safe integer");
  }
  const out = new Uint8Array(CHALLENGE_SIZE + PUBLIC_KEY_SIZE + NONCE_SIZE);
  out.set(challenge.bytes, 0);
  out.set(publicKey, CHALLENGE_SIZE);
  new DataView(out.buffer).setBigUint64(CHALLENGE_SIZE + PUBLIC_KEY_SIZE, BigInt(nonce), false);
  return out;
}

// One scrypt evaluation: 32 bytes whose leading `difficulty` bits must be zero.
export function work(challenge, publicKey, nonce) {
  return scrypt(puzzleInput(challenge, publicKey, nonce), SALT, {
    N: 2 ** challenge.log2N,
    r: challenge.r,
    p: challenge.p,
    dkLen: 32,
    maxmem: 2 * 128 * challenge.r * 2 ** challenge.log2N + 1024 * 1024,
  });
}

export function meets(output, difficulty) {
  let bits = difficulty;
  for (let i = 0; bits > 0; i++) {
    if (bits >= 8) {
      if (output[i] !== 0) return false;
      bits -= 8;
    } else {
      return output[i] >> (8 - bits) === 0;
    }
  }
  return true;
}

// Search nonces from `start` upward; resolves with the first that solves the puzzle.
// onProgress({ done, expected }) after each try; `signal` (AbortSignal) cancels.
export async function solve(challenge, publicKey, options = {}) {
  const { start = 0, onProgress, signal, sliceMs = 50 } = options;
  const expected = 2 ** challenge.difficulty;
  let sliceStart = Date.now();
  for (let nonce = start, done = 0; nonce <= MAX_NONCE; nonce++) {
    if (signal && signal.aborted) throw new PuzzleError("cancelled", "solving was cancelled");
    const output = work(challenge, publicKey, nonce);
    done += 1;
    if (onProgress) onProgress({ done, expected });
    if (meets(output, challenge.difficulty)) return nonce;
    if (Date.now() - sliceStart >= sliceMs) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      sliceStart = Date.now();
    }
  }
  throw new PuzzleError("malformed", "no nonce solves this puzzle");
}

// The header value: 58 hex digits of challenge, ".", 16 hex digits of nonce (lowercase).
export function encodeSolution(challenge, nonce) {
  if (!Number.isSafeInteger(nonce) || nonce < 0) {
    throw new PuzzleError("malformed", "the nonce must be a non-negative safe integer");
  }
  return `${toHex(challenge.bytes)}.${BigInt(nonce).toString(16).padStart(2 * NONCE_SIZE, "0")}`;
}
