// web/note.js against the project's note vectors (specs/vectors/note/, written by
// specs/vectors/generate_note.py for crypto/note.py, crypto/keys.py and crypto/checkpoint.py)
// and the conformance notes in tests/vectors/note/ (C2SP example, sum.golang.org, Sunlight).
// Every vector of the operations the page performs runs here: key parsing, note opening,
// checkpoint parsing and opening. Signing operations are Python-only (the page never signs).
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { test } from "node:test";
import {
  NoteError,
  b64encode,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
} from "../note.js";

const root = new URL("../../", import.meta.url);
const CODES = {
  MalformedError: "malformed",
  LimitExceededError: "limit",
  KeyFormatError: "key_format",
  InvalidSignatureError: "bad_signature",
  NoKnownSignatureError: "no_known_signature",
  WrongPurposeError: "wrong_origin",
};
const PAGE_OPS = new Set(["keypair", "parse_verifier_key", "open_note", "parse_checkpoint", "open_checkpoint"]);

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = new URL(name, dir);
    return statSync(path).isDirectory() ? walk(new URL(`${name}/`, dir)) : [path];
  });
}

const bytes = (b64) => new Uint8Array(Buffer.from(b64, "base64"));
const hex = (u8) => Buffer.from(u8).toString("hex");

function expectCode(fn, expect) {
  assert.throws(fn, (err) => {
    assert.ok(err instanceof NoteError, `not a NoteError: ${err}`);
    assert.equal(err.code, CODES[expect], err.message);
    return true;
  });
}

const vectors = walk(new URL("specs/vectors/note/", root))
  .filter((u) => u.pathname.endsWith(".json"))
  .map((u) => ({ name: u.pathname.split("specs/vectors/note/")[1], v: JSON.parse(readFileSync(u, "utf8")) }))
  .filter(({ v }) => PAGE_OPS.has(v.op));

test("the page's operations have vectors", () => {
  assert.ok(vectors.length >= 110, `${vectors.length} vectors`);
});

for (const { name, v } of vectors) {
  test(`note vector ${name}: ${v.description}`, () => {
    const limits = {};
    if (v.max_size !== undefined) limits.maxSize = v.max_size;
    if (v.max_signatures !== undefined) limits.maxSignatures = v.max_signatures;
    switch (v.op) {
      case "keypair": {
        const key = parseVerifierKey(v.verifier_key);
        assert.equal(key.name, v.name);
        assert.equal(key.alg, v.alg);
        assert.equal(key.keyId.toString(16).padStart(8, "0"), v.key_id);
        assert.equal(hex(key.publicKey), v.public_key_hex);
        break;
      }
      case "parse_verifier_key":
        expectCode(() => parseVerifierKey(bytes(v.input_b64)), v.expect);
        if (v.input_text !== undefined) expectCode(() => parseVerifierKey(v.input_text), v.expect);
        break;
      case "open_note": {
        const run = () => openNote(bytes(v.note_b64), v.verifier_keys.map(parseVerifierKey), limits);
        if (v.expect !== "ok") {
          expectCode(run, v.expect);
          break;
        }
        const note = run();
        assert.deepEqual(note.verifiedBy.map((k) => k.name), v.verified_by);
        if (v.text_b64 !== undefined) assert.equal(b64encode(note.text), v.text_b64);
        break;
      }
      case "parse_checkpoint": {
        const run = () => parseCheckpoint(bytes(v.input_b64));
        if (v.expect !== "ok") {
          expectCode(run, v.expect);
          break;
        }
        const cp = run();
        assert.equal(cp.origin, v.origin);
        // JSON numbers lose precision past 2^53: compare with the size line of the text.
        assert.equal(cp.size, BigInt(v.input_text.split("\n")[1]));
        assert.equal(Number(cp.size), v.size);
        assert.equal(b64encode(cp.rootHash), v.root_hash_b64);
        assert.deepEqual([...cp.extensions], v.extensions);
        break;
      }
      case "open_checkpoint": {
        const run = () => openCheckpoint(bytes(v.note_b64), v.verifier_keys.map(parseVerifierKey), { origin: v.origin });
        if (v.expect !== "ok") {
          expectCode(run, v.expect);
          break;
        }
        const { checkpoint } = run();
        assert.equal(checkpoint.size, BigInt(v.size));
        assert.equal(b64encode(checkpoint.rootHash), v.root_hash_b64);
        break;
      }
      default:
        assert.fail(`unexpected op ${v.op}`);
    }
  });
}

// -- conformance notes from other implementations (tests/vectors/note/README.md) ---------------

const conformance = (name) => new Uint8Array(readFileSync(new URL(`tests/vectors/note/${name}`, root)));

function flipEach(note, keys, check) {
  // Altering any one byte of text or signature must make the note fail (never verify).
  for (let i = 0; i < note.length; i++) {
    const bad = note.slice();
    bad[i] ^= 0x01;
    assert.throws(() => check(bad, keys), NoteError, `byte ${i} altered still opens`);
  }
}

test("C2SP signed-note example verifies; any altered byte does not", () => {
  const key = parseVerifierKey("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k");
  const note = conformance("c2sp-example.note");
  const opened = openNote(note, [key]);
  assert.equal(new TextDecoder().decode(opened.text), "This is an example message.\n");
  flipEach(note, [key], (b, k) => openNote(b, k));
});

test("a real sum.golang.org checkpoint opens with its key and origin", () => {
  const key = parseVerifierKey("sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8");
  const note = conformance("sumdb-checkpoint.note");
  const { checkpoint } = openCheckpoint(note, [key], { origin: "go.sum database tree" });
  assert.equal(checkpoint.size, 65664258n);
  assert.equal(b64encode(checkpoint.rootHash), "WVVNVD2qx+fTq31zkj6UAqxT5X6HvGphGM+o8Thnbsg=");
  assert.throws(() => openCheckpoint(note, [key], { origin: "sum.golang.org" }), { code: "wrong_origin" });
  flipEach(note, [key], (b, k) => openCheckpoint(b, k, { origin: "go.sum database tree" }));
});

test("the Sunlight mirror checkpoint's cosignature/v1 line verifies with the witness key", () => {
  const key = parseVerifierKey("mirror.example.org+3fb148ef+BAAjjch9GyYz0sJsJx7ALhbdAtz2ov0unbzSl1vMp94O");
  const { checkpoint } = openCheckpoint(conformance("sunlight-mirror/checkpoint"), [key], {
    origin: "rome2026h1.example.org",
  });
  assert.equal(checkpoint.size, 300n);
});

test("a note signed by one key is not opened by another key of the same name", () => {
  const note = conformance("c2sp-example.note");
  const other = parseVerifierKey("hub.example.org+3824413a+AaatHky80MUt8LAnh+E1TvAt/UeFr8+oR5KCsj/jgyNy");
  assert.throws(() => openNote(note, [other]), { code: "no_known_signature" });
});

test("inputs that are not bytes are refused as malformed, not crashed on", () => {
  assert.throws(() => openNote("text\n\n", []), { code: "malformed" });
  assert.throws(() => parseCheckpoint(null), { code: "malformed" });
  assert.throws(() => parseVerifierKey(42), { code: "key_format" });
});
