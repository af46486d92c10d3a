// web/receipts.js against an in-memory hub: the 1000-entry log of specs/vectors/merkle/tiles.json
// (tiles checked against the vector's digests in tiles.test.mjs), a checkpoint for it signed
// here as a C2SP note, and status entries shaped as specs/submission.md section 6. A real hub
// is exercised by tests/web/test_web_receipts.py; here every failure path is driven on purpose.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { ed25519 } from "../vendor/@noble/curves/ed25519.js";
import { sha256 } from "../vendor/@noble/hashes/sha2.js";
import { b64encode } from "../note.js";
import { leafHash } from "../merkle.js";
import { parseTilePath } from "../tiles.js";
import { ReceiptError, checkInclusion, logKeyFromPage, receiptsFor, verifiedCheckpoint } from "../receipts.js";

const tilesVector = JSON.parse(readFileSync(new URL("../../specs/vectors/merkle/tiles.json", import.meta.url), "utf8"));
const hex = (u8) => Buffer.from(u8).toString("hex");
const entries = Array.from({ length: 1000 }, (_, i) => Buffer.from(`entry ${i}`));
const leaves = entries.map(leafHash);
const ROOT = new Uint8Array(Buffer.from(tilesVector.root, "hex"));

/** A test signer: a note key from a fixed seed (the page itself never signs notes). */
function signer(name, seedByte) {
  const seed = new Uint8Array(32).fill(seedByte);
  const pub = ed25519.getPublicKey(seed);
  const id = sha256(Buffer.concat([Buffer.from(name), Buffer.from([0x0a, 0x01]), pub])).slice(0, 4);
  return {
    vkey: `${name}+${hex(id)}+${b64encode(Uint8Array.of(1, ...pub))}`,
    sign(text) {
      const sig = ed25519.sign(Buffer.from(text), seed);
      return `${text}\n— ${name} ${b64encode(Uint8Array.of(...id, ...sig))}\n`;
    },
  };
}

const LOG = signer("hub.test/log", 7);
const OTHER = signer("other.test/log", 8);
const IMPOSTOR = signer("hub.test/log", 9); // same name, other key
const cpText = (origin, size, root) => `${origin}\n${size}\n${b64encode(root)}\n`;
const GOOD = LOG.sign(cpText("hub.test/log", 1000, ROOT));

function rootOf(hashes) {
  // The tree of the first n leaves, to sign checkpoints of other sizes.
  let level = hashes;
  while (level.length > 1) {
    const next = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(sha256(Uint8Array.of(1, ...level[i], ...level[i + 1])));
    if (level.length & 1) next.push(level.at(-1));
    level = next;
  }
  return level[0];
}

/** Tiles of a log of `count` entries, computed naively. */
function tile(path, count) {
  const { level, index, width } = parseTilePath(path);
  const n = Number(index);
  if (level === "entries") {
    if (n * 256 + width > count) return null;
    return Buffer.concat(entries.slice(n * 256, n * 256 + width).map((e) => Buffer.concat([Buffer.from([0, e.length]), e])));
  }
  const span = 256 ** level;
  if ((n * 256 + width) * span > count) return null;
  return Buffer.concat(Array.from({ length: width }, (_, i) => rootOf(leaves.slice((n * 256 + i) * span, (n * 256 + i + 1) * span))));
}

/** A fetch serving `checkpoint` and the tiles of a log of `count` entries under http://hub.test/. */
function hub({ checkpoint = GOOD, count = 1000, tamper = (p, b) => b, log = [] } = {}) {
  return async (url) => {
    const path = url.replace(/^http:\/\/hub\.test\//, "");
    log.push(path);
    const body = path === "checkpoint" ? Buffer.from(checkpoint) : path.startsWith("tile/") ? tile(path, count) : null;
    if (body === null) return new Response('{"error":{"code":"not_found"}}', { status: 404 });
    return new Response(tamper(path, new Uint8Array(body)), { status: 200 });
  };
}

const base = "http://hub.test/";
const integrated = (i, leaf = leaves[i]) => ({
  entry_id: `${i}`.padStart(32, "0"),
  kind: "addition",
  state: "integrated",
  log_index: i,
  leaf_hash: hex(leaf),
  withdrawn: false,
});

test("logKeyFromPage reads the meta element the hub fills, and refuses an empty one", () => {
  const doc = (content) => ({
    querySelector: (sel) => (sel === 'meta[name="ncii-log-key"]' && content !== null ? { getAttribute: () => content } : null),
  });
  assert.equal(logKeyFromPage(doc(LOG.vkey)), LOG.vkey);
  assert.throws(() => logKeyFromPage(doc("")), { code: "bad_key" });
  assert.throws(() => logKeyFromPage(doc(null)), { code: "bad_key" });
  assert.throws(() => logKeyFromPage(doc(LOG.vkey.slice(0, -2))), { code: "bad_key" });
});

test("verifiedCheckpoint: the log's checkpoint opens with the page's key", async () => {
  const cp = await verifiedCheckpoint({ base, logKey: LOG.vkey, fetch: hub() });
  assert.equal(cp.origin, "hub.test/log");
  assert.equal(cp.size, 1000);
  assert.equal(hex(cp.rootHash), tilesVector.root);
  assert.equal(cp.text, GOOD);
  // "/" and "./" style bases without a trailing slash work the same.
  const log = [];
  await verifiedCheckpoint({ base: "http://hub.test", logKey: LOG.vkey, fetch: hub({ log }) });
  assert.deepEqual(log, ["checkpoint"]);
});

const refusals = [
  ["signed by another log's key", () => OTHER.sign(cpText("hub.test/log", 1000, ROOT)), "bad_signature"],
  ["signed by another key under the log's name", () => IMPOSTOR.sign(cpText("hub.test/log", 1000, ROOT)), "bad_signature"],
  ["a signature that does not verify", () => GOOD.replace(/[A-Za-z](=?\n)$/, (m, end) => (m[0] === "A" ? "B" : "A") + end), "bad_signature"],
  ["the size changed after signing", () => GOOD.replace("\n1000\n", "\n1001\n"), "bad_signature"],
  ["validly signed for another origin", () => LOG.sign(cpText("hub.test/other-log", 1000, ROOT)), "wrong_log"],
  ["not a checkpoint", () => LOG.sign("hello\n"), "bad_checkpoint"],
  ["not a note", () => "<html>maintenance</html>", "bad_checkpoint"],
  ["far too large", () => GOOD + "x".repeat(70000), "bad_checkpoint"],
];

for (const [why, make, code] of refusals) {
  test(`verifiedCheckpoint refuses a checkpoint ${why}: ${code}`, async () => {
    await assert.rejects(verifiedCheckpoint({ base, logKey: LOG.vkey, fetch: hub({ checkpoint: make() }) }), (e) => {
      assert.ok(e instanceof ReceiptError, String(e));
      assert.equal(e.code, code, e.message);
      return true;
    });
  });
}

test("verifiedCheckpoint: a hub that is down or answers an error is a network problem", async () => {
  const down = async () => {
    throw new TypeError("fetch failed");
  };
  await assert.rejects(verifiedCheckpoint({ base, logKey: LOG.vkey, fetch: down }), { code: "network" });
  const busy = async () => new Response("busy", { status: 503 });
  await assert.rejects(verifiedCheckpoint({ base, logKey: LOG.vkey, fetch: busy }), (e) => e.code === "network" && e.status === 503);
  await assert.rejects(verifiedCheckpoint({ base, logKey: "not a key", fetch: hub() }), { code: "bad_key" });
  const witnessKey = "witness1.example.com+ebc8931d+BPRjwrbQsctVl/krtn/ih0Nh9Xeb9i3BrmmWqs5QJlb8";
  await assert.rejects(verifiedCheckpoint({ base, logKey: witnessKey, fetch: hub() }), { code: "bad_key" });
});

test("checkInclusion: leaves across the log are proven from tiles, each tile fetched once", async () => {
  const log = [];
  const fetch = hub({ log });
  const cp = await verifiedCheckpoint({ base, logKey: LOG.vkey, fetch });
  for (const i of [0, 255, 256, 700, 999]) {
    assert.equal(await checkInclusion({ base, checkpoint: cp, leafIndex: i, leafHash: hex(leaves[i]), fetch }), true);
  }
  assert.equal(new Set(log).size, log.length, log.join(" "));
  assert.ok(log.every((p) => p === "checkpoint" || p.startsWith("tile/")));
  await assert.rejects(checkInclusion({ base, checkpoint: cp, leafIndex: 5, leafHash: hex(leaves[6]), fetch }), { code: "bad_proof" });
  await assert.rejects(checkInclusion({ base, checkpoint: cp, leafIndex: 1000, leafHash: hex(leaves[6]), fetch }), { code: "not_in_log" });
  await assert.rejects(checkInclusion({ base, checkpoint: cp, leafIndex: 5, leafHash: "zz", fetch }), { code: "bad_entry" });
});

// Every tile the proof of leaf 600 reads: its full level-0 tile, the right edge, its bundle.
for (const target of ["tile/0/002", "tile/0/003.p/232", "tile/1/000.p/3", "tile/entries/002"]) {
  test(`a tile altered in transit (${target}) is bad_proof`, async () => {
    const fetch = hub({
      tamper: (p, b) => {
        if (p !== target) return b;
        const c = b.slice();
        c[c.length - 3] ^= 0x80;
        return c;
      },
    });
    const cp = await verifiedCheckpoint({ base, logKey: LOG.vkey, fetch });
    await assert.rejects(checkInclusion({ base, checkpoint: cp, leafIndex: 600, leafHash: hex(leaves[600]), fetch }), { code: "bad_proof" });
  });
}

test("receiptsFor: one receipt per entry of a status answer, each state as the person sees it", async () => {
  const status = {
    v: 1,
    case_id: "c",
    withdrawn: false,
    checkpoint_size: 1000,
    entries: [
      integrated(3),
      integrated(998),
      { entry_id: "p".repeat(32), kind: "addition", state: "pending", log_index: null, leaf_hash: null, withdrawn: false },
      { entry_id: "h".repeat(32), kind: "addition", state: "held", log_index: null, leaf_hash: null, withdrawn: false },
      { entry_id: "r".repeat(32), kind: "addition", state: "rejected", log_index: null, leaf_hash: null, withdrawn: false },
      { ...integrated(1200, leaves[0]) }, // integrated after the checkpoint this page fetched
      { ...integrated(10), leaf_hash: hex(leaves[11]) }, // the hub claims a leaf the log does not hold
      { entry_id: "t".repeat(32), kind: "tombstone", state: "integrated", log_index: 500, leaf_hash: hex(leaves[500]), withdraws: "0".repeat(32) },
    ],
  };
  const got = await receiptsFor({ base, logKey: LOG.vkey, entries: status, fetch: hub() });
  assert.deepEqual(
    got.map((r) => [r.state, r.problem]),
    [["in-log", null], ["in-log", null], ["pending", null], ["pending", null], ["failed", "not_in_log"], ["pending", null], ["failed", "bad_proof"], ["in-log", null]],
  );
  assert.equal(got[0].entry, status.entries[0]);
  assert.deepEqual(Object.keys(got[0].receipt), ["logIndex", "treeSize", "proof", "checkpoint"]);
  assert.equal(got[0].receipt.checkpoint, GOOD);
  assert.equal(got[0].receipt.proof.length, 10);
  // The array form (status.entries) is the same.
  const again = await receiptsFor({ base, logKey: LOG.vkey, entries: status.entries.slice(0, 1), fetch: hub() });
  assert.equal(again[0].state, "in-log");
  // JSON-able, so the page can keep receipts in "remember on this device".
  JSON.stringify(got.map((r) => r.receipt));
});

test("receiptsFor: a checkpoint by another key fails every logged entry, pending ones stay pending", async () => {
  const fetch = hub({ checkpoint: OTHER.sign(cpText("hub.test/log", 1000, ROOT)) });
  const got = await receiptsFor({ base, logKey: LOG.vkey, entries: [integrated(1), { state: "pending", log_index: null }], fetch });
  assert.deepEqual(got.map((r) => [r.state, r.problem]), [["failed", "bad_signature"], ["pending", null]]);
});

test("receiptsFor: nothing logged means no request at all", async () => {
  const log = [];
  const got = await receiptsFor({ base, logKey: LOG.vkey, entries: [{ state: "pending", log_index: null }], fetch: hub({ log }) });
  assert.equal(got[0].state, "pending");
  assert.deepEqual(log, []);
});

test("receiptsFor: a hub that is down is reported per entry as network, not as a bad log", async () => {
  const down = async () => {
    throw new TypeError("fetch failed");
  };
  const got = await receiptsFor({ base, logKey: LOG.vkey, entries: [integrated(1)], fetch: down });
  assert.deepEqual([got[0].state, got[0].problem], ["failed", "network"]);
});

test("receiptsFor: a smaller, older checkpoint leaves later entries pending", async () => {
  const size = 300;
  const fetch = hub({ checkpoint: LOG.sign(cpText("hub.test/log", size, rootOf(leaves.slice(0, size)))), count: size });
  const got = await receiptsFor({ base, logKey: LOG.vkey, entries: [integrated(299), integrated(300)], fetch });
  assert.deepEqual(got.map((r) => r.state), ["in-log", "pending"]);
});

test("receiptsFor: a tampered tile is fetched once, however many entries need it", async () => {
  const log = [];
  const fetch = hub({
    log,
    tamper: (p, b) => {
      if (p !== "tile/0/003.p/232") return b;
      const c = b.slice();
      c[0] ^= 1;
      return c;
    },
  });
  const got = await receiptsFor({ base, logKey: LOG.vkey, entries: Array.from({ length: 20 }, (_, i) => integrated(i * 40)), fetch });
  assert.deepEqual(new Set(got.map((r) => r.problem)), new Set(["bad_proof"]));
  assert.equal(log.filter((p) => p === "tile/0/003.p/232").length, 1, log.join(" "));
});

test("receiptsFor: after a network failure the remaining entries are not tried", async () => {
  let calls = 0;
  const flaky = async (url, init) => {
    calls += 1;
    if (url.includes("tile/")) throw new TypeError("fetch failed");
    return hub()(url, init);
  };
  const got = await receiptsFor({ base, logKey: LOG.vkey, entries: [integrated(1), integrated(2), integrated(900)], fetch: flaky });
  assert.deepEqual(got.map((r) => r.problem), ["network", "network", "network"]);
  assert.ok(calls <= 4, `${calls} requests`);
});

test("checkInclusion: an aborted check does not poison later checks of the same checkpoint", async () => {
  const fetch = hub();
  const cp = await verifiedCheckpoint({ base, logKey: LOG.vkey, fetch });
  const controller = new AbortController();
  controller.abort();
  const aborting = async (url, init) => {
    init.signal?.throwIfAborted();
    return fetch(url, init);
  };
  await assert.rejects(checkInclusion({ base, checkpoint: cp, leafIndex: 4, leafHash: hex(leaves[4]), fetch: aborting, signal: controller.signal }), { name: "AbortError" });
  assert.equal(await checkInclusion({ base, checkpoint: cp, leafIndex: 4, leafHash: hex(leaves[4]), fetch: aborting }), true);
});

// -- the log only grows: consistency with an earlier checkpoint --------------------------------

const EARLIER = LOG.sign(cpText("hub.test/log", 300, rootOf(leaves.slice(0, 300))));

test("verifiedCheckpoint: a checkpoint that extends the earlier one is accepted, from tiles", async () => {
  const log = [];
  const fetch = hub({ log });
  const cp = await verifiedCheckpoint({ base, logKey: LOG.vkey, previous: EARLIER, fetch });
  assert.equal(cp.size, 1000);
  assert.ok(log.slice(1).every((p) => p.startsWith("tile/")), log.join(" "));
  // The same tiles then serve inclusion proofs without fetching them again.
  const before = log.length;
  await checkInclusion({ base, checkpoint: cp, leafIndex: 999, leafHash: hex(leaves[999]), fetch });
  assert.ok(log.slice(before).every((p) => p.startsWith("tile/entries/")), log.slice(before).join(" "));
  // Equal and empty earlier trees, and an older checkpoint served by a cache, are fine too.
  await verifiedCheckpoint({ base, logKey: LOG.vkey, previous: GOOD, fetch: hub() });
  await verifiedCheckpoint({ base, logKey: LOG.vkey, previous: LOG.sign(cpText("hub.test/log", 0, sha256(new Uint8Array(0)))), fetch: hub() });
  const older = await verifiedCheckpoint({ base, logKey: LOG.vkey, previous: GOOD, fetch: hub({ checkpoint: EARLIER, count: 300 }) });
  assert.equal(older.size, 300);
});

test("verifiedCheckpoint: a log that rewrote what the earlier checkpoint showed is inconsistent_log", async () => {
  const forked = [...leaves.slice(0, 299), leafHash(Buffer.from("another entry"))];
  const cases = [
    LOG.sign(cpText("hub.test/log", 300, rootOf(forked))), // same size, another history
    LOG.sign(cpText("hub.test/log", 1000, rootOf([leaves[1], ...leaves.slice(1)]))), // same size as now, another root
  ];
  for (const previous of cases) {
    await assert.rejects(verifiedCheckpoint({ base, logKey: LOG.vkey, previous, fetch: hub() }), { code: "inconsistent_log" });
    const got = await receiptsFor({ base, logKey: LOG.vkey, previous, entries: [integrated(5)], fetch: hub() });
    assert.deepEqual([got[0].state, got[0].problem], ["failed", "inconsistent_log"]);
  }
});

test("verifiedCheckpoint: an earlier checkpoint that does not verify is refused before any request", async () => {
  const log = [];
  const bad = [OTHER.sign(cpText("hub.test/log", 300, ROOT)), "garbage", LOG.sign(cpText("hub.test/other", 300, ROOT))];
  for (const previous of bad) {
    await assert.rejects(verifiedCheckpoint({ base, logKey: LOG.vkey, previous, fetch: hub({ log }) }), { code: "bad_checkpoint" });
  }
  assert.deepEqual(log, []);
});

test("verifiedCheckpoint: tiles altered while proving consistency are bad_proof, not a fork", async () => {
  const fetch = hub({
    tamper: (p, b) => {
      if (p !== "tile/0/001") return b;
      const c = b.slice();
      c[100] ^= 1;
      return c;
    },
  });
  await assert.rejects(verifiedCheckpoint({ base, logKey: LOG.vkey, previous: EARLIER, fetch }), { code: "bad_proof" });
});
