// C2SP tlog-tiles for the page (specs/tiles.md, as crypto/tiles.py): tile paths, bounded
// fetches of hash tiles and entry bundles from the hub under a relative `base`, and the
// inclusion proof of a leaf computed from tiles authenticated against a trusted (size, root).
//
// Why tiles and not the hub's /v1/proof: every log reader fetches the same immutable tiles (a
// mirror or cache can serve them), so a request names no leaf and links no case to an address.
import { HASH_SIZE, MerkleError, checkSize, inclusionProof, leafHash, nodeHash, pairHashes } from "./merkle.js";
import { equalBytes } from "./vendor/@noble/curves/utils.js";

/** `.code`: "network" (fetch failed, or an HTTP answer other than 200; `.status` is set when
 *  there was one), "too_large" (an answer past its cap), "inconsistent" (a tile or bundle that is
 *  malformed or does not hash to the trusted root), "malformed" (impossible arguments). */
export class TileError extends Error {
  constructor(code, message, status = null) {
    super(message);
    this.name = "TileError";
    this.code = code;
    this.status = status;
  }
}

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;
export const MAX_TILE_LEVEL = 63;
/** Most bytes read for an entry bundle: 256 entries of 34-byte leaf data (specs/commitment.md)
 *  with 2 more bytes of slack each; the same cap as client/hub.py. */
export const MAX_BUNDLE_BYTES = TILE_WIDTH * (2 + 256);
const MAX_PATH_LENGTH = 128;
const H = BigInt(TILE_HEIGHT);
const W = BigInt(TILE_WIDTH);
const PATH_RE = /^tile\/(entries|0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*)([0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/;

function fail(code, message, status = null) {
  throw new TileError(code, message, status);
}

/** N as zero-padded 3-digit groups, all but the last prefixed with x: x001/x234/067. */
function formatIndex(index) {
  let n = BigInt(index);
  const groups = [String(n % 1000n).padStart(3, "0")];
  n /= 1000n;
  while (n) {
    groups.push(`x${String(n % 1000n).padStart(3, "0")}`);
    n /= 1000n;
  }
  return groups.reverse().join("/");
}

/** Path of hash tile (level, index, width) or, with level "entries", of an entry bundle. */
export function tilePath(level, index, width = TILE_WIDTH) {
  if (level !== "entries" && !(Number.isInteger(level) && level >= 0 && level <= MAX_TILE_LEVEL)) {
    fail("malformed", `a tile level must be an integer from 0 to ${MAX_TILE_LEVEL}`);
  }
  if (!(Number.isInteger(width) && width >= 1 && width <= TILE_WIDTH)) {
    fail("malformed", `a tile width must be an integer from 1 to ${TILE_WIDTH}`);
  }
  const suffix = width === TILE_WIDTH ? "" : `.p/${width}`;
  return `tile/${level}/${formatIndex(checkSize(index, "tile index"))}${suffix}`;
}

/** { level (number or "entries"), index (BigInt), width } of a canonical tile path; anything
 *  else is refused, so one resource has exactly one name (as crypto.tiles.parse_path). */
export function parseTilePath(path) {
  if (typeof path !== "string") fail("malformed", "a tile path must be text");
  if (path.length > MAX_PATH_LENGTH) fail("malformed", `a tile path has at most ${MAX_PATH_LENGTH} characters`);
  const m = PATH_RE.exec(path);
  if (m === null) fail("malformed", "not a tile path");
  const groups = m[2].split("/").filter(Boolean).map((g) => g.slice(1));
  if (groups.length && groups[0] === "000") fail("malformed", "a tile index must not start with a zero group");
  const index = BigInt([...groups, m[3]].join(""));
  const width = m[4] === undefined ? TILE_WIDTH : Number(m[4]);
  if (width >= TILE_WIDTH && m[4] !== undefined) fail("malformed", "a partial tile width must be from 1 to 255");
  const level = m[1] === "entries" ? "entries" : Number(m[1]);
  try {
    checkSize(index, "tile index");
    const shift = level === "entries" ? 0n : H * BigInt(level);
    if ((index * W + BigInt(width)) << shift > 2n ** 63n - 1n) throw new Error();
  } catch {
    fail("malformed", "tile lies beyond the largest supported tree size");
  }
  return { level, index, width };
}

/** Hashes a tree of `size` leaves has at tile level `level` (tree level 8 * level). */
const countAt = (size, level) => size >> (H * BigInt(level));

/** The partial tile { level, index, width } of each level that has one: the right edge. */
export function partialTiles(size) {
  const s = checkSize(size, "tree size");
  const out = [];
  for (let level = 0; countAt(s, level) > 0n; level++) {
    const count = countAt(s, level);
    if (count % W) out.push({ level, index: count >> H, width: Number(count % W) });
  }
  return out;
}

/** The 32-byte hashes in the bytes of a tile of `width`; the length must be exactly width * 32. */
export function decodeTile(width, bytes) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== width * HASH_SIZE) {
    fail("inconsistent", `a tile of width ${width} must be ${width * HASH_SIZE} bytes`);
  }
  const out = [];
  for (let i = 0; i < bytes.length; i += HASH_SIZE) out.push(bytes.slice(i, i + HASH_SIZE));
  return out;
}

/** The entries of an entry bundle: exactly `width` of them, each a big-endian uint16 length
 *  and its bytes, no trailing bytes. */
export function decodeEntryBundle(bytes, width) {
  const entries = [];
  let pos = 0;
  while (pos < bytes.length) {
    if (entries.length === TILE_WIDTH) fail("inconsistent", "an entry bundle holds at most 256 entries");
    if (bytes.length - pos < 2) fail("inconsistent", "entry bundle truncated inside a length");
    const length = (bytes[pos] << 8) | bytes[pos + 1];
    pos += 2;
    if (bytes.length - pos < length) fail("inconsistent", "entry bundle truncated inside an entry");
    entries.push(bytes.subarray(pos, pos + length));
    pos += length;
  }
  if (entries.length !== width) fail("inconsistent", `entry bundle must hold ${width} entries, got ${entries.length}`);
  return entries;
}

/** The body of a 200 answer, reading at most `limit` bytes (a hub cannot make the page hold
 *  more); a declared or streamed body past it is refused. */
export async function readCapped(response, limit, what) {
  if (response.status !== 200) {
    // Drop the body unread: an error page's size is not the page's business.
    await response.body?.cancel().catch(() => {});
    fail("network", `${what}: the hub answered HTTP ${response.status}`, response.status);
  }
  const declared = Number(response.headers.get("content-length"));
  if (declared > limit) {
    await response.body?.cancel().catch(() => {});
    fail("too_large", `${what}: the answer is larger than ${limit} bytes`);
  }
  if (!response.body) {
    // No stream (an empty answer, or a fetch stand-in): the length is checked all the same.
    const whole = new Uint8Array(await response.arrayBuffer());
    if (whole.length > limit) fail("too_large", `${what}: the answer is larger than ${limit} bytes`);
    return whole;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    let part;
    try {
      part = await reader.read();
    } catch (err) {
      fail("network", `${what}: reading the answer failed (${err?.name ?? "error"})`);
    }
    if (part.done) break;
    total += part.value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      fail("too_large", `${what}: the answer is larger than ${limit} bytes`);
    }
    chunks.push(part.value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** `base` with exactly one trailing slash ("/" on the hub, "./" under ncii-client ui). */
export function normalBase(base) {
  if (typeof base !== "string") fail("malformed", "base must be a URL prefix");
  return base.endsWith("/") ? base : `${base}/`;
}

/** GET `base + path`, bounded; network failures become TileError("network"). */
export async function fetchBytes({ base, path, limit, fetch = globalThis.fetch, signal }) {
  let response;
  try {
    response = await fetch(normalBase(base) + path, { method: "GET", credentials: "same-origin", signal });
  } catch (err) {
    if (err?.name === "AbortError") throw err;
    fail("network", `${path}: the hub could not be reached`);
  }
  return readCapped(response, limit, path);
}

/** A reader of complete-subtree hashes over the tiles of a tree whose (size, root) the caller
 *  trusts (a verified checkpoint). Every tile is authenticated before any hash from it is used:
 *  the partial tiles at the right edge must recompute the root, and each full tile must hash to
 *  its entry in the authenticated tile above it. Tiles are cached for the reader's life. */
export class TileHashReader {
  constructor({ size, rootHash, base, fetch = globalThis.fetch, signal }) {
    this.size = checkSize(size, "tree size");
    if (!(rootHash instanceof Uint8Array) || rootHash.length !== HASH_SIZE) {
      fail("malformed", "the trusted root must be 32 bytes");
    }
    this.rootHash = rootHash;
    this.base = base;
    this.fetch = fetch;
    this.signal = signal;
    this.verified = new Map(); // "level/index" -> in-tile subtree levels
    this.failed = new Map(); // "edge" or "level/index" -> the TileError it was refused with
    this.edge = null;
  }

  async fetchHashes(level, index, width) {
    const path = tilePath(level, index, width);
    const bytes = await fetchBytes({ base: this.base, path, limit: width * HASH_SIZE, fetch: this.fetch, signal: this.signal });
    try {
      return decodeTile(width, bytes);
    } catch {
      return fail("inconsistent", `tile ${path} is malformed`);
    }
  }

  /** Authenticate the right edge: the partial tiles must fold into the trusted root. */
  async checkEdge() {
    if (this.edge) return this.edge;
    if (this.failed.has("edge")) throw this.failed.get("edge");
    try {
      this.edge = await this.authenticateEdge();
    } catch (err) {
      // Tiles that contradict the trusted root will not get better: refuse again without
      // refetching (a tampered edge would otherwise cost a fetch per leaf asked about).
      if (err instanceof TileError && err.code === "inconsistent") this.failed.set("edge", err);
      throw err;
    }
    return this.edge;
  }

  async authenticateEdge() {
    const partial = partialTiles(this.size);
    const hashes = await Promise.all(partial.map((t) => this.fetchHashes(t.level, t.index, t.width)));
    const frontier = [];
    for (let i = partial.length - 1; i >= 0; i--) frontier.push(...partialFrontier(partial[i].width, tileLevels(hashes[i])));
    let root = frontier.at(-1);
    for (let i = frontier.length - 2; i >= 0; i--) root = nodeHash(frontier[i], root);
    if (!root || !equalBytes(root, this.rootHash)) {
      fail("inconsistent", "the partial tiles at the right edge do not hash to the trusted root");
    }
    partial.forEach((t, i) => this.verified.set(`${t.level}/${t.index}`, tileLevels(hashes[i])));
    return partial;
  }

  /** In-tile subtree hashes of the authenticated tile (level, index). */
  async levels(level, index) {
    await this.checkEdge();
    const key = `${level}/${index}`;
    const cached = this.verified.get(key);
    if (cached) return cached;
    if (this.failed.has(key)) throw this.failed.get(key);
    const count = countAt(this.size, level);
    if ((index + 1n) * W > count) fail("inconsistent", `tile (${level}, ${index}) is outside the tree`);
    try {
      const levels = tileLevels(await this.fetchHashes(level, index, TILE_WIDTH));
      const parent = await this.levels(level + 1, index >> H);
      if (!equalBytes(levels[TILE_HEIGHT][0], parent[0][Number(index % W)])) {
        fail("inconsistent", `tile ${tilePath(level, index)} does not match its hash in the tile above it`);
      }
      this.verified.set(key, levels);
      return levels;
    } catch (err) {
      if (err instanceof TileError && err.code === "inconsistent") this.failed.set(key, err);
      throw err;
    }
  }

  /** HashReader (web/merkle.js): the hash of each complete subtree { level, n }, in order. */
  async readHashes(nodes) {
    const out = [];
    for (const { level, n } of nodes) {
      const nn = BigInt(n);
      if (!Number.isInteger(level) || level < 0 || level > 63 || (nn + 1n) << BigInt(level) > this.size) {
        fail("malformed", `node (${level}, ${n}) is not complete in the tree`);
      }
      const tileLevel = Math.floor(level / TILE_HEIGHT);
      const sub = level % TILE_HEIGHT;
      const first = nn << BigInt(sub); // index of the node's first hash at tree level 8*tileLevel
      const levels = await this.levels(tileLevel, first >> H);
      out.push(levels[sub][Number((first % W) >> BigInt(sub))]);
    }
    return out;
  }
}

/** levels[r][i]: the hash of 2^r tile hashes starting at tile position i * 2^r. */
function tileLevels(hashes) {
  const levels = [hashes];
  let cur = hashes;
  while (cur.length > 1) {
    cur = pairHashes(cur);
    levels.push(cur);
  }
  return levels;
}

/** Frontier hashes a partial tile of this width contributes, largest first. */
function partialFrontier(width, levels) {
  const out = [];
  let offset = 0;
  for (let bit = TILE_HEIGHT - 1; bit >= 0; bit--) {
    if ((width >> bit) & 1) {
      out.push(levels[bit][offset >> bit]);
      offset += 1 << bit;
    }
  }
  return out;
}

/** The inclusion proof of the leaf at `index` in the tree of the trusted (size, rootHash),
 *  computed from authenticated tiles, after checking that the tiles hold `leaf` there and that
 *  the public entry bundle behind that tile matches it entry for entry (client/hub.py checks
 *  the one entry; checking all 256 costs as many hashes and catches any altered bundle).
 *  Pass one `reader` (and `bundles` map) to share fetched data across leaves of a checkpoint. */
export async function proveFromTiles({ index, leaf, reader, bundles = new Map() }) {
  const i = checkSize(index, "leaf index");
  if (i >= reader.size) fail("malformed", "leaf index must be smaller than the tree size");
  const [atIndex] = await reader.readHashes([{ level: 0, n: i }]);
  if (!equalBytes(atIndex, leaf)) fail("inconsistent", "the log holds another leaf at this index");
  const number = i >> H;
  const known = bundles.get(number);
  if (known instanceof TileError) throw known;
  if (!known) {
    const width = Number(reader.size - number * W < W ? reader.size - number * W : W);
    const path = tilePath("entries", number, width);
    const bytes = await fetchBytes({ base: reader.base, path, limit: MAX_BUNDLE_BYTES, fetch: reader.fetch, signal: reader.signal });
    const hashes = (await reader.levels(0, number))[0];
    try {
      const entries = decodeEntryBundle(bytes, width);
      entries.forEach((entry, k) => {
        if (!equalBytes(leafHash(entry), hashes[k])) {
          fail("inconsistent", `the public entry bundle ${path} does not match the log's tiles`);
        }
      });
    } catch (err) {
      bundles.set(number, err);
      throw err;
    }
    bundles.set(number, true);
  }
  try {
    return await inclusionProof(i, reader.size, reader);
  } catch (err) {
    if (err instanceof MerkleError) fail("inconsistent", err.message);
    throw err;
  }
}
