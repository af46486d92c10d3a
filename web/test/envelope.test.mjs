// web/envelope.js against the Python vectors (specs/vectors/envelope/, written from
// crypto/envelope.py): seal() gives the same bytes, openEnvelope() the same verdicts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { fromHex, toHex } from "../case.js";
import { EnvelopeError, openEnvelope, peekEnvelope, seal, sealNow } from "../envelope.js";
import { ed25519 } from "../vendor/@noble/curves/ed25519.js";

const vectors = (name) =>
  JSON.parse(readFileSync(new URL(`../../specs/vectors/envelope/${name}`, import.meta.url), "utf8")).cases;

const signerOf = (seed) => ({ publicKey: ed25519.getPublicKey(seed), sign: (m) => ed25519.sign(m, seed) });

// Python's exception class -> this module's code.
const CODES = {
  MalformedError: "malformed",
  WrongPurposeError: "wrong_purpose",
  LimitExceededError: "limit",
  InvalidSignatureError: "invalid_signature",
  StaleMessageError: "stale",
};

const seals = vectors("seal.json");
assert.ok(seals.length >= 12);
for (const v of seals) {
  test(`envelope/${v.id}: the same bytes as crypto/envelope.py`, () => {
    const signer = signerOf(fromHex(v.signing_seed));
    const body = fromHex(v.body);
    const got = seal(signer, v.purpose, body, v.timestamp, fromHex(v.nonce));
    assert.equal(toHex(got), v.envelope);
    const opened = openEnvelope(got, { expectedPurpose: v.purpose, now: v.timestamp });
    assert.deepEqual([opened.purpose, opened.timestamp, toHex(opened.body)], [v.purpose, v.timestamp, v.body]);
    assert.equal(toHex(peekEnvelope(got).publicKey), toHex(signer.publicKey));
  });
}

for (const v of vectors("open.json")) {
  test(`envelope/${v.id}`, () => {
    const options = { expectedPurpose: v.expected_purpose, now: v.now, windowSeconds: v.window_seconds, maxBody: v.max_body };
    const data = fromHex(v.envelope);
    if (v.error) {
      assert.throws(() => openEnvelope(data, options), (e) => e instanceof EnvelopeError && e.code === CODES[v.error]);
    } else {
      const opened = openEnvelope(data, options);
      assert.equal(opened.purpose, v.expected_purpose);
    }
  });
}

test("seal refuses what crypto/envelope.py refuses", () => {
  const signer = signerOf(new Uint8Array(32));
  const body = new Uint8Array(0);
  const nonce = new Uint8Array(16);
  for (const [purpose, timestamp, n] of [
    ["", 0, nonce],
    ["Status", 0, nonce],
    ["-x", 0, nonce],
    ["a".repeat(65), 0, nonce],
    ["status-query", -1, nonce],
    ["status-query", 1.5, nonce],
    ["status-query", 2n ** 63n, nonce],
    ["status-query", 0, new Uint8Array(15)],
  ]) {
    assert.throws(() => seal(signer, purpose, body, timestamp, n), (e) => e instanceof EnvelopeError && e.code === "malformed");
  }
  assert.equal(seal(signer, "a".repeat(64), body, 2n ** 63n - 1n, nonce).length, 6 + 64 + 32 + 8 + 16 + 4 + 64);
});

test("sealNow draws a fresh nonce and uses this device's clock", () => {
  const signer = signerOf(new Uint8Array(32).fill(7));
  const body = new TextEncoder().encode('{"v":1}');
  const a = peekEnvelope(sealNow(signer, "status-query", body));
  const b = peekEnvelope(sealNow(signer, "status-query", body));
  assert.notEqual(toHex(a.nonce), toHex(b.nonce));
  assert.ok(Math.abs(a.timestamp - Date.now() / 1000) < 5);
});
