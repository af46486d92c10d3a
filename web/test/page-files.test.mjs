// The page's decisions about chosen files (ui/files.js): what each file's outcome is and
// exactly which hub hashes the confirmation counts and sends, as ncii-client decides them.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as submission from "../submission.js";
import { classify, plan } from "../ui/files.js";

const hex = (n, c) => c.repeat(n);
const photo = (c, quality = 100) => [
  { path: "a.jpg", kind: "image", algorithm: "md5", hash: hex(32, c), quality: null },
  { path: "a.jpg", kind: "image", algorithm: "sha256", hash: hex(64, c), quality: null },
  { path: "a.jpg", kind: "image", algorithm: "pdq", hash: hex(64, c), quality, fit: quality >= 50 },
];
const videoWithoutVpdq = [
  { path: "v.webm", kind: "video", algorithm: "md5", hash: hex(32, "e"), quality: null },
  { path: "v.webm", kind: "video", algorithm: "sha256", hash: hex(64, "e"), quality: null },
];
const other = [
  { path: "n.txt", kind: "file", algorithm: "md5", hash: hex(32, "f"), quality: null },
  { path: "n.txt", kind: "file", algorithm: "sha256", hash: hex(64, "f"), quality: null },
];

test("each file's outcome", () => {
  assert.deepEqual(
    (({ kind, status, reason }) => ({ kind, status, reason }))(classify({ records: photo("a") }, submission)),
    { kind: "image", status: "ready", reason: null },
  );
  const flat = classify({ records: photo("b", 20) }, submission);
  assert.equal(flat.status, "low");
  assert.equal(flat.reason, "flat-picture");
  assert.equal(flat.records, null); // nothing of it is sent
  const video = classify({ records: videoWithoutVpdq }, submission);
  assert.deepEqual([video.kind, video.status, video.reason, video.hashes.length], ["video", "exact", "video-decode", 2]);
  const notMedia = classify({ records: other }, submission);
  assert.deepEqual([notMedia.kind, notMedia.status, notMedia.reason, notMedia.records], ["file", "skipped", "not-media", null]);
});

test("the plan sends each hash once and knows which files it came from; no names", () => {
  const files = [
    { id: 1, ...classify({ records: photo("a") }, submission) },
    { id: 2, ...classify({ records: photo("a") }, submission) }, // the same photo chosen twice
    { id: 3, ...classify({ records: photo("c") }, submission) },
  ];
  const { hashes, owners } = plan(files, submission);
  assert.equal(hashes.length, 6);
  assert.deepEqual(owners.slice(0, 3), [[1, 2], [1, 2], [1, 2]]);
  assert.deepEqual(owners.slice(3), [[3], [3], [3]]);
  assert.ok(!JSON.stringify(hashes).includes("a.jpg"));
  assert.deepEqual(hashes.map((h) => h.algorithm), ["pdq", "md5", "sha256", "pdq", "md5", "sha256"]);
});
