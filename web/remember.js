// "Remember on this device": the page keeps a case's state (file labels and their entry ids,
// envelopes not yet acknowledged, receipts) in IndexedDB, encrypted, only when the person asks.
//
//   import { remember, recall, hasRemembered, forget } from "./remember.js";
//   await remember(secret, { files: {...}, pending: [envelopeBytes], receipts: [...] });
//   const state = await recall(secret);   // null: nothing remembered for this case
//   await forget();                        // everything this page stored, in one call
//
// What is stored, per remembered case, is {id, v, iv, data}: `data` is AES-256-GCM (WebCrypto)
// of the state's JSON under a key derived from the case secret with HKDF-SHA256 (its own
// labels, so the key is unrelated to the case signing key), `id` a second HKDF output that finds
// the record again. Without the recovery code nothing in the database says which case it is:
// no case id, hash, entry id or file name is stored in the clear, and the plaintext is padded
// to a multiple of 4 KiB so its length tells little about how many files there are. The key is
// made non-extractable. Errors: RememberError, `.code` "unavailable" (no IndexedDB or WebCrypto
// here, e.g. a private window that refuses storage, or a plain-http address) or "damaged" (a record for this case that does not decrypt).
//
// State must be JSON-able; Uint8Array values (envelopes) are kept as bytes and come back as
// Uint8Array.
import { toHex } from "./case.js";

export const DB_NAME = "ncii-remember";
const STORE = "states";
const VERSION = 1;
const PAD = 4096;
const encoder = new TextEncoder();
const SALT = encoder.encode("ncii-exchange/remember/v1");
const KEY_INFO = encoder.encode("ncii-exchange/remember-key/v1");
const ID_INFO = encoder.encode("ncii-exchange/remember-id/v1");
const BYTES_TAG = "$bytes";

export class RememberError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "RememberError";
    this.code = code;
  }
}

function checkSecret(secret) {
  if (!(secret instanceof Uint8Array) || secret.length !== 16) throw new TypeError("a case secret is 16 bytes");
}

/** The record's id and its AES-GCM key, both from the case secret (HKDF-SHA256, WebCrypto). */
async function keysOf(secret) {
  checkSecret(secret);
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new RememberError("unavailable", "this page is not on a secure (https) address, so it cannot encrypt");
  const base = await subtle.importKey("raw", secret, "HKDF", false, ["deriveKey", "deriveBits"]);
  const id = new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: SALT, info: ID_INFO }, base, 128));
  const key = await subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: SALT, info: KEY_INFO },
    base,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
  return { id: toHex(id), key };
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDb() {
  if (typeof indexedDB === "undefined") throw new RememberError("unavailable", "this browser keeps nothing (no IndexedDB)");
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, VERSION);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id" });
    req.onsuccess = () => {
      req.result.onversionchange = () => req.result.close(); // never block forget() in another tab
      resolve(req.result);
    };
    req.onerror = () => reject(new RememberError("unavailable", "this browser refused to keep anything"));
    req.onblocked = () => reject(new RememberError("unavailable", "another tab holds the storage open"));
  });
}

async function withStore(mode, work) {
  const db = await openDb();
  try {
    const tx = db.transaction(STORE, mode);
    const done = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new RememberError("unavailable", "storage aborted"));
    });
    const result = await work(tx.objectStore(STORE));
    await done;
    return result;
  } finally {
    db.close();
  }
}

function encodeState(state) {
  const text = JSON.stringify(state, (_, value) => (value instanceof Uint8Array ? { [BYTES_TAG]: toHex(value) } : value));
  if (text === undefined) throw new TypeError("the state must be JSON-able");
  const raw = encoder.encode(text);
  // Pad with spaces (still valid JSON) to a multiple of PAD bytes.
  const out = new Uint8Array(Math.ceil((raw.length + 1) / PAD) * PAD).fill(0x20);
  out.set(raw, 0);
  return out;
}

function decodeState(bytes) {
  return JSON.parse(new TextDecoder().decode(bytes), (_, value) => {
    if (value && typeof value === "object" && Object.keys(value).length === 1 && typeof value[BYTES_TAG] === "string") {
      const hex = value[BYTES_TAG];
      const out = new Uint8Array(hex.length / 2);
      for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
      return out;
    }
    return value;
  });
}

/** Keep `state` for this case on this device, encrypted; replaces what was kept for it. */
export async function remember(secret, state) {
  const { id, key } = await keysOf(secret);
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const aad = encoder.encode(`ncii-remember/v1/${id}`);
  const data = new Uint8Array(await globalThis.crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, encodeState(state)));
  await withStore("readwrite", (store) => request(store.put({ id, v: 1, iv, data })));
}

/** The state kept for this case, or null when nothing is kept for it (or it was forgotten). */
export async function recall(secret) {
  const { id, key } = await keysOf(secret);
  if (!(await databaseExists())) return null;
  const record = await withStore("readonly", (store) => request(store.get(id)));
  if (!record) return null;
  try {
    const aad = encoder.encode(`ncii-remember/v1/${id}`);
    const plain = await globalThis.crypto.subtle.decrypt({ name: "AES-GCM", iv: record.iv, additionalData: aad }, key, record.data);
    return decodeState(new Uint8Array(plain));
  } catch {
    throw new RememberError("damaged", "what this device kept for the case cannot be read (changed or damaged)");
  }
}

async function databaseExists() {
  if (typeof indexedDB === "undefined") return false;
  if (typeof indexedDB.databases === "function") {
    const list = await indexedDB.databases();
    return list.some((d) => d.name === DB_NAME);
  }
  return true; // cannot tell without opening it
}

/** Whether this device keeps anything for any case (without saying which: no secret needed). */
export async function hasRemembered() {
  if (!(await databaseExists())) return false;
  return (await withStore("readonly", (store) => request(store.count()))) > 0;
}

/** Delete everything this page stored on this device, for every case, in one call. */
export async function forget() {
  if (typeof indexedDB === "undefined") return;
  await new Promise((resolve, reject) => {
    const req = indexedDB.deleteDatabase(DB_NAME);
    req.onsuccess = () => resolve();
    req.onerror = () => reject(new RememberError("unavailable", "this browser did not delete what it kept"));
    req.onblocked = () => reject(new RememberError("unavailable", "another tab of this page is open: close it, then forget again"));
  });
}
