// web/tiles.js: tile paths (specs/vectors/merkle/tile_paths.json), proofs from the tiles of the
// 1000-entry log of specs/vectors/merkle/tiles.json (served from memory through a fetch whose
// every tile is first checked against the vector's SHA-256), and from the Sunlight log of 300
// entries in tests/vectors/note/sunlight-mirror/ (FiloSottile/sunlight test data, files as a
// server serves them). Tampered tiles, bundles and oversized answers are refused.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { inclusionProof, rootFromLeafHashes, leafHash, verifyInclusion } from "../merkle.js";
import { TileError, TileHashReader, parseTilePath, partialTiles, proveFromTiles, tilePath } from "../tiles.js";

const root = new URL("../../", import.meta.url);
const json = (p) => JSON.parse(readFileSync(new URL(p, root), "utf8"));
const hex = (u8) => Buffer.from(u8).toString("hex");
const sha = (u8) => createHash("sha256").update(u8).digest("hex");
const paths = json("specs/vectors/merkle/tile_paths.json");
const tilesVector = json("specs/vectors/merkle/tiles.json");

for (const v of paths.valid) {
  test(`tile path ${v.path} parses and formats back`, () => {
    const got = parseTilePath(v.path);
    assert.deepEqual(got, { level: v.level, index: BigInt(v.index), width: v.width });
    assert.equal(tilePath(v.level, v.index, v.width), v.path);
  });
}

for (const v of paths.invalid) {
  test(`tile path refused: ${v.why}`, () => {
    assert.throws(() => parseTilePath(v.path), { code: "malformed" });
  });
}

test("partial tiles of a size are the right edge", () => {
  const sizes = Object.entries(paths.tiles_for_size);
  assert.ok(sizes.length >= 5);
  for (const [size, tiles] of sizes) {
    const want = tiles.filter((p) => p.includes(".p/") && !p.includes("entries"));
    const got = partialTiles(Number(size)).map((t) => tilePath(t.level, t.index, t.width));
    assert.deepEqual(got.sort(), want.sort(), `size ${size}`);
  }
});

// -- an in-memory log served through fetch ---------------------------------------------------

/** The bytes of every tile path of a log of `entries`, computed naively from the leaf hashes. */
function tileServer(entries) {
  const leaves = entries.map(leafHash);
  const levelHashes = (level, start, count) =>
    Array.from({ length: count }, (_, i) => {
      const first = (start + i) * 256 ** level;
      return rootFromLeafHashes(leaves.slice(first, first + 256 ** level));
    });
  return (path) => {
    const { level, index, width } = parseTilePath(path);
    const n = Number(index);
    if (level === "entries") {
      const chunk = entries.slice(n * 256, n * 256 + width);
      return chunk.length === width ? Buffer.concat(chunk.map((e) => Buffer.concat([Buffer.from([e.length >> 8, e.length & 255]), e]))) : null;
    }
    const avail = Math.floor(entries.length / 256 ** level) - n * 256;
    if (avail < width) return null;
    return Buffer.concat(levelHashes(level, n * 256, width));
  };
}

/** A fetch over `serve(path)`; `tamper(path, bytes)` may alter an answer; requests are logged. */
function fakeFetch(serve, { tamper = (p, b) => b, log = [] } = {}) {
  return async (url, init) => {
    assert.equal(init.method, "GET");
    const path = url.replace(/^http:\/\/hub\.test\/log\//, "");
    log.push(path);
    const body = serve(path);
    if (body === null) return new Response("not found", { status: 404 });
    return new Response(tamper(path, new Uint8Array(body)), { status: 200 });
  };
}

const entries1000 = Array.from({ length: 1000 }, (_, i) => Buffer.from(`entry ${i}`));
const serve1000 = tileServer(entries1000);
const base = "http://hub.test/log";

test("the test tile server writes the vector's tiles byte for byte", () => {
  for (const [path, digest] of Object.entries(tilesVector.tile_sha256)) {
    assert.equal(sha(serve1000(path)), digest, path);
  }
});

test("proofs from tiles for leaves across a 1000-entry log verify against the vector's root", async () => {
  const rootHash = Buffer.from(tilesVector.root, "hex");
  const log = [];
  const checked = fakeFetch((p) => {
    const body = serve1000(p);
    // Every tile the reader fetches at size 1000 that the vector lists has the vector's bytes.
    if (body && tilesVector.tile_sha256[p]) assert.equal(sha(body), tilesVector.tile_sha256[p]);
    return body;
  }, { log });
  const reader = new TileHashReader({ size: 1000, rootHash: new Uint8Array(rootHash), base, fetch: checked });
  const bundles = new Map();
  for (const index of [0, 1, 255, 256, 511, 512, 767, 768, 999]) {
    const leaf = leafHash(entries1000[index]);
    const proof = await proveFromTiles({ index, leaf, reader, bundles });
    assert.equal(verifyInclusion(leaf, index, 1000, proof, new Uint8Array(rootHash)), true);
  }
  // Each tile and bundle fetched once; only tiles and bundles, never a proof endpoint.
  assert.equal(new Set(log).size, log.length);
  assert.ok(log.every((p) => p.startsWith("tile/")), log.join(","));
});

test("proofs at every batch size of the vector (partial tiles at every edge)", async () => {
  let size = 0;
  for (const batch of tilesVector.batches) {
    size += batch;
    const leaves = entries1000.slice(0, size).map(leafHash);
    const rootHash = rootFromLeafHashes(leaves);
    const reader = new TileHashReader({ size, rootHash, base, fetch: fakeFetch(tileServer(entries1000.slice(0, size))) });
    for (const index of new Set([0, size >> 1, size - 1])) {
      const proof = await proveFromTiles({ index, leaf: leaves[index], reader });
      verifyInclusion(leaves[index], index, size, proof, rootHash);
    }
  }
});

test("the Sunlight test log: proofs from its served tiles lead to its checkpoint root", async () => {
  const dir = new URL("tests/vectors/note/sunlight-mirror/", root);
  const serve = (p) => (existsSync(new URL(p, dir)) ? readFileSync(new URL(p, dir)) : null);
  const rootHash = new Uint8Array(Buffer.from("gw31yQrqZZCcEOPrzX+bpy3nJ6QgngTKn8G1m0i62uU=", "base64"));
  const reader = new TileHashReader({ size: 300, rootHash, base: `${base}/`, fetch: fakeFetch(serve) });
  // Its entry bundles are not length-prefixed bundles (Sunlight's own format), so this reads
  // only hash tiles: the leaf from its tile, then the proof.
  for (const index of [0, 42, 255, 256, 299]) {
    const leaf = leafHash(Buffer.from(`record ${index}`));
    const [stored] = await reader.readHashes([{ level: 0, n: index }]);
    assert.equal(hex(stored), hex(leaf));
    const proof = await inclusionProof(index, 300, reader);
    assert.equal(verifyInclusion(leaf, index, 300, proof, rootHash), true);
  }
});

// -- tampering -------------------------------------------------------------------------------

const rootHash1000 = new Uint8Array(Buffer.from(tilesVector.root, "hex"));

async function proveWith(tamper, index = 300) {
  const reader = new TileHashReader({ size: 1000, rootHash: rootHash1000, base, fetch: fakeFetch(serve1000, { tamper }) });
  return proveFromTiles({ index, leaf: leafHash(entries1000[index]), reader });
}

function flipByte(target, at = 5) {
  return (p, b) => {
    if (p !== target) return b;
    const c = b.slice();
    c[at] ^= 1;
    return c;
  };
}

for (const target of ["tile/0/001", "tile/0/003.p/232", "tile/1/000.p/3", "tile/entries/001"]) {
  test(`one altered byte in ${target} is caught`, async () => {
    await assert.rejects(proveWith(flipByte(target)), (e) => e instanceof TileError && e.code === "inconsistent");
  });
}

test("a tile of the wrong length is refused", async () => {
  await assert.rejects(proveWith((p, b) => (p === "tile/0/001" ? b.subarray(0, 8160) : b)), { code: "inconsistent" });
});

test("an answer longer than a tile is cut off, not read", async () => {
  const big = (p, b) => (p === "tile/0/001" ? new Uint8Array(1 << 20) : b);
  await assert.rejects(proveWith(big), { code: "too_large" });
});

test("a tile the checkpoint needs but the hub does not serve is a network problem with its status", async () => {
  const reader = new TileHashReader({ size: 1001, rootHash: rootHash1000, base, fetch: fakeFetch(serve1000) });
  await assert.rejects(proveFromTiles({ index: 0, leaf: leafHash(entries1000[0]), reader }), (e) => e.code === "network" && e.status === 404);
});

test("a leaf that is not at its index is refused", async () => {
  const reader = new TileHashReader({ size: 1000, rootHash: rootHash1000, base, fetch: fakeFetch(serve1000) });
  await assert.rejects(proveFromTiles({ index: 7, leaf: leafHash(entries1000[8]), reader }), { code: "inconsistent" });
});

test("a fetch that throws is a network problem", async () => {
  const reader = new TileHashReader({ size: 1000, rootHash: rootHash1000, base, fetch: async () => { throw new TypeError("offline"); } });
  await assert.rejects(proveFromTiles({ index: 7, leaf: leafHash(entries1000[7]), reader }), { code: "network" });
});

test("readCapped: a declared length past the cap is refused before reading, a stream cut off", async () => {
  const { readCapped } = await import("../tiles.js");
  const declared = new Response(new Uint8Array(10), { headers: { "content-length": "100000" } });
  await assert.rejects(readCapped(declared, 8192, "tile"), { code: "too_large" });
  const streamed = new Response(new ReadableStream({
    pull(controller) {
      controller.enqueue(new Uint8Array(4096)); // endless: only the cap stops it
    },
  }));
  await assert.rejects(readCapped(streamed, 8192, "tile"), { code: "too_large" });
  const bodiless = { status: 200, headers: new Headers(), body: null, arrayBuffer: async () => new ArrayBuffer(9000) };
  await assert.rejects(readCapped(bodiless, 8192, "tile"), { code: "too_large" });
  const ok = await readCapped(new Response(new Uint8Array(8192)), 8192, "tile");
  assert.equal(ok.length, 8192);
  await assert.rejects(readCapped(new Response("x", { status: 500 }), 8192, "tile"), (e) => e.code === "network" && e.status === 500);
});
