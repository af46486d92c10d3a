// web/submission.js: bodies as client/plan.py and client/hub.py write them. The byte-for-byte
// comparison with the Python client on the same files is tests/web/test_web_case_bytes.py; here:
// the spec's examples, the hub's own entry-body vectors and the splitting rules.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  SubmissionError,
  canonicalHashKey,
  fileReport,
  planSubmission,
  pythonFloat,
  splitBodies,
  statusQueryBody,
  submissionBody,
  withdrawalBody,
} from "../submission.js";

const text = (bytes) => new TextDecoder().decode(bytes);
const hex = (n, c = "a") => c.repeat(n);
const image = (pdqQuality = 100, tag = "1") => [
  { path: "private/photo.jpg", kind: "image", algorithm: "md5", hash: hex(32, tag), quality: null },
  { path: "private/photo.jpg", kind: "image", algorithm: "sha256", hash: hex(64, tag), quality: null },
  { path: "private/photo.jpg", kind: "image", algorithm: "pdq", hash: hex(64, "f"), quality: pdqQuality, fit: pdqQuality >= 50 },
];

test("the example of specs/submission.md section 1", () => {
  const body = submissionBody([
    { algorithm: "pdq", hash: "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22", quality: 100 },
    { algorithm: "md5", hash: "d35c785545392755e7e4164457657269" },
    { algorithm: "sha256", hash: "b5b0799616df52d475a3968dc7e54f1d0724c912244ffa6175bc786375dd7298" },
  ]);
  assert.equal(
    text(body),
    '{"v":1,"hashes":[{"algorithm":"pdq","hash":"f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22","quality":100},' +
      '{"algorithm":"md5","hash":"d35c785545392755e7e4164457657269"},' +
      '{"algorithm":"sha256","hash":"b5b0799616df52d475a3968dc7e54f1d0724c912244ffa6175bc786375dd7298"}]}',
  );
});

const entries = JSON.parse(readFileSync(new URL("../../specs/vectors/submission/entries.json", import.meta.url), "utf8")).records;
for (const v of entries.filter((r) => r.submitted)) {
  test(`submission/${v.id}: the canonical key is the hub's entry-body spelling`, () => {
    const key = canonicalHashKey(v.submitted);
    assert.equal(`{"hash":${key},"kind":"addition","v":1}`, v.entry);
  });
}

test("floats are written as Python's repr", () => {
  const cases = [[0, "0.0"], [1, "1.0"], [0.5, "0.5"], [0.001, "0.001"], [1.1, "1.1"], [9999999.999, "9999999.999"],
    [1e7, "10000000.0"], [0.1 + 0.2, "0.30000000000000004"], [1e-5, "1e-05"], [1.5e-7, "1.5e-07"], [1e16, "1e+16"],
    [123456789012345680, "1.2345678901234568e+17"], [-0, "-0.0"]];
  for (const [x, want] of cases) assert.equal(pythonFloat(x), want, String(x));
});

test("a file is sent whole or not at all, media first (client/plan.py _report)", () => {
  const ready = fileReport(image());
  assert.equal(ready.state, "ready");
  assert.deepEqual(ready.hashes.map((h) => h.algorithm), ["pdq", "md5", "sha256"]);
  assert.deepEqual(ready.algorithms, ["pdq", "md5", "sha256"]);
  assert.equal(fileReport(image(49)).state, "low-quality");
  assert.equal(fileReport(image(49)).hashCount, 0);
  const other = image().slice(0, 2).map((r) => ({ ...r, kind: "file" }));
  assert.equal(fileReport(other).state, "skipped");
  const video = image().slice(0, 2).map((r) => ({ ...r, kind: "video" }));
  assert.deepEqual(fileReport(video).hashes.map((h) => h.algorithm), ["md5", "sha256"]);
  const frames = [0, 1, 2].map((i) => ({ frame: i * 30, quality: i === 1 ? 100 : 10, hash: hex(64, String(i)), timestamp: i }));
  const withVpdq = [...video, { kind: "video", algorithm: "vpdq", hash: frames, quality: null, fit: true }];
  const body = text(submissionBody(fileReport(withVpdq).hashes));
  assert.ok(body.includes('{"frame":30,"quality":100,"hash":"' + hex(64, "1") + '","timestamp":1.0}'));
  const flat = [...video, { kind: "video", algorithm: "vpdq", hash: frames.map((f) => ({ ...f, quality: 1 })), quality: null, fit: false }];
  assert.equal(fileReport(flat).state, "low-quality");
});

test("long videos are cut into entries of at most maxFrames; all-flat chunks are left out", () => {
  const frames = Array.from({ length: 10 }, (_, i) => ({ frame: i, quality: i < 4 ? 100 : 0, hash: hex(64, "b"), timestamp: i / 3 }));
  const records = [{ kind: "video", algorithm: "vpdq", hash: frames, quality: null, fit: true }];
  const r = fileReport(records, { maxHashes: 1000, maxBody: 1e6, maxFrames: 3 });
  assert.deepEqual(r.hashes.map((h) => h.frames.map((f) => f.frame)), [[0, 1, 2], [3, 4, 5]]);
  assert.equal(r.hashes[0].frames[1].timestamp, 0.333);
});

test("duplicates across files are sent once; per-file reports keep no hash values", () => {
  const plan = planSubmission([image(), image(), image(20, "2"), { records: image(100, "3") }]);
  assert.equal(plan.hashCount, 5); // pdq shared by all three ready files
  assert.deepEqual(plan.files.map((f) => f.state), ["ready", "ready", "low-quality", "ready"]);
  assert.ok(!JSON.stringify(plan.files).includes(hex(64, "f")));
  const flat = planSubmission([...image(), ...image(100, "3")]);
  assert.equal(flat.files.length, 2);
  assert.equal(flat.hashCount, 5);
});

test("nothing of a record but its fingerprints reaches the body", () => {
  const records = image().map((r) => ({ ...r, path: "Secret Name.jpg", extra: "x" }));
  const body = text(submissionBody(planSubmission([records]).hashes));
  assert.ok(!body.includes("Secret") && !body.includes("path") && !body.includes("kind") && !body.includes("extra"));
});

test("bad records are refused by position, never by value", () => {
  const bad = [
    [{ kind: "image", algorithm: "md5", hash: "ABC" }],
    [{ kind: "image", algorithm: "pdq", hash: hex(64), quality: 101 }],
    [{ kind: "image", algorithm: "sha1", hash: hex(40) }],
    [{ kind: "video", algorithm: "vpdq", hash: [{ frame: 0, quality: 100, hash: hex(64), timestamp: Infinity }] }],
    [],
  ];
  for (const records of bad) {
    assert.throws(() => planSubmission([records]), (e) => e instanceof SubmissionError && e.code === "bad_record" && !e.message.includes("ABC"));
  }
});

test("bodies split at maxHashes items or maxBody bytes, as split_bodies does", () => {
  const hashes = Array.from({ length: 7 }, (_, i) => ({ algorithm: "md5", hash: i.toString(16).padStart(32, "0") }));
  assert.equal(splitBodies(hashes, { maxHashes: 3, maxBody: 1e6 }).length, 3);
  const one = submissionBody(hashes.slice(0, 1)).length; // 19 + item - 1
  const perItem = one - 19 + 1;
  const bodies = splitBodies(hashes, { maxHashes: 1000, maxBody: 19 + 2 * perItem });
  assert.deepEqual(bodies.map((b) => JSON.parse(text(b)).hashes.length), [2, 2, 2, 1]);
  assert.ok(bodies.every((b) => b.length <= 19 + 2 * perItem));
});

test("status and withdrawal bodies", () => {
  assert.equal(text(statusQueryBody()), '{"v":1}');
  assert.equal(text(withdrawalBody("all")), '{"v":1,"all":true}');
  const id = "0123456789abcdef0123456789abcdef";
  assert.equal(text(withdrawalBody([` ${id.toUpperCase()} `, id])), `{"v":1,"entries":["${id}"]}`);
  for (const bad of [[], ["xyz"], "everything", [id + "0"]]) {
    assert.throws(() => withdrawalBody(bad), (e) => e instanceof SubmissionError && e.code === "bad_entry_id");
  }
});
