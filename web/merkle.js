// RFC 9162 Merkle trees for the page (specs/merkle.md, as crypto/merkle.py): leaf and node
// hashes, inclusion and consistency proofs computed from stored subtree hashes, and their checks.
//
// Sizes and indexes are handled as BigInt inside: a log may pass 2^53 leaves in principle and
// tile arithmetic must never silently round. Callers may pass Numbers (safe integers) or BigInts.
import { sha256 } from "./vendor/@noble/hashes/sha2.js";

/** `.code`: "malformed" (impossible input), "limit" (beyond 2^63-1 or an over-long proof),
 *  "bad_proof" (the proof does not lead to the root: crypto's InvalidProofError),
 *  "inconsistent" (stored hashes do not fit together: InconsistentTreeError). */
export class MerkleError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "MerkleError";
    this.code = code;
  }
}

export const HASH_SIZE = 32;
/** Largest tree size (and index + 1) handled, as crypto/merkle.py's MAX_TREE_SIZE. */
export const MAX_TREE_SIZE = 2n ** 63n - 1n;
/** No valid proof for a tree of at most MAX_TREE_SIZE leaves is longer. */
const MAX_PROOF_LENGTH = 128;

/** Root of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT = sha256(new Uint8Array(0));

function fail(code, message) {
  throw new MerkleError(code, message);
}

/** Hash of one log entry: SHA-256(0x00 || data). */
export function leafHash(data) {
  const buf = new Uint8Array(data.length + 1);
  buf.set(data, 1);
  return sha256(buf);
}

/** Hash of an interior node: SHA-256(0x01 || left || right). */
export function nodeHash(left, right) {
  const buf = new Uint8Array(1 + 2 * HASH_SIZE);
  buf[0] = 0x01;
  buf.set(left, 1);
  buf.set(right, 1 + HASH_SIZE);
  return sha256(buf);
}

/** nodeHash of each consecutive pair; an odd last hash is left out. */
export function pairHashes(level) {
  const out = [];
  for (let i = 0; i + 1 < level.length; i += 2) out.push(nodeHash(level[i], level[i + 1]));
  return out;
}

/** `value` as a BigInt in [0, MAX_TREE_SIZE]; refuses fractions, unsafe Numbers and others. */
export function checkSize(value, what) {
  let v;
  if (typeof value === "bigint") v = value;
  else if (typeof value === "number" && Number.isSafeInteger(value)) v = BigInt(value);
  else fail("malformed", `${what} must be an integer`);
  if (v < 0n) fail("malformed", `${what} must not be negative`);
  if (v > MAX_TREE_SIZE) fail("limit", `${what} exceeds the largest supported tree size 2**63-1`);
  return v;
}

export function checkHash(value, what) {
  if (!(value instanceof Uint8Array)) fail("malformed", `${what} must be bytes`);
  if (value.length !== HASH_SIZE) fail("malformed", `${what} must be ${HASH_SIZE} bytes, got ${value.length}`);
  return value;
}

function checkProof(proof) {
  if (!Array.isArray(proof)) fail("malformed", "a proof must be an array of 32-byte hashes");
  if (proof.length > MAX_PROOF_LENGTH) fail("limit", `a proof has at most ${MAX_PROOF_LENGTH} hashes`);
  return proof.map((p, i) => checkHash(p, `proof hash ${i}`));
}

function equal(a, b) {
  // Public values, but there is no cost to comparing without an early exit.
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

const bitLength = (n) => (n === 0n ? 0 : n.toString(2).length);
const popCount = (n) => n.toString(2).replaceAll("0", "").length;

/** The largest power of two strictly smaller than n (n >= 2): RFC 9162's split point k. */
function split(n) {
  return 1n << BigInt(bitLength(n - 1n) - 1);
}

/** The perfect subtrees { level, n } covering leaves [start, end), left to right, largest first
 *  possible; folding them right to left gives the range's hash for the ranges proofs use. */
export function rangeNodes(start, end) {
  const nodes = [];
  while (start < end) {
    let level = bitLength(end - start) - 1;
    if (start) level = Math.min(level, bitLength(start & -start) - 1);
    const l = BigInt(level);
    nodes.push({ level, n: start >> l });
    start += 1n << l;
  }
  return nodes;
}

/** Leaf ranges whose hashes form PATH(index, D[0:size]) (RFC 9162 2.1.3.1), proof order. */
function inclusionRanges(index, size) {
  const ranges = [];
  let lo = 0n;
  let hi = size;
  while (hi - lo > 1n) {
    const k = split(hi - lo);
    if (index < lo + k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo += k;
    }
  }
  return ranges.reverse();
}

/** Leaf ranges whose hashes form PROOF(size1, D[0:size2]) (RFC 9162 2.1.4.1), proof order. */
function consistencyRanges(size1, size2) {
  const ranges = [];
  if (size1 === 0n || size1 === size2) return ranges;
  let lo = 0n;
  let hi = size2;
  let m = size1;
  let whole = true;
  while (m !== hi - lo) {
    const k = split(hi - lo);
    if (m <= k) {
      ranges.push([lo + k, hi]);
      hi = lo + k;
    } else {
      ranges.push([lo, lo + k]);
      lo += k;
      m -= k;
      whole = false;
    }
  }
  if (!whole) ranges.push([lo, hi]);
  return ranges.reverse();
}

/** The hash of each leaf range, from one batched read of the perfect subtrees covering them. */
async function hashesOfRanges(ranges, reader) {
  const perRange = ranges.map(([lo, hi]) => rangeNodes(lo, hi));
  const wanted = new Map();
  for (const nodes of perRange) for (const node of nodes) wanted.set(`${node.level}/${node.n}`, node);
  const got = await reader.readHashes([...wanted.values()]);
  if (!Array.isArray(got) || got.length !== wanted.size) {
    fail("inconsistent", `hash storage returned the wrong number of hashes for ${wanted.size} nodes`);
  }
  const stored = new Map();
  [...wanted.keys()].forEach((key, j) => {
    if (!(got[j] instanceof Uint8Array) || got[j].length !== HASH_SIZE) {
      fail("inconsistent", "hash storage returned a malformed hash");
    }
    stored.set(key, got[j]);
  });
  const at = (node) => stored.get(`${node.level}/${node.n}`);
  return perRange.map((nodes) => {
    let acc = at(nodes.at(-1));
    for (let j = nodes.length - 2; j >= 0; j--) acc = nodeHash(at(nodes[j]), acc);
    return acc;
  });
}

/** The inclusion proof of leaf `index` in the tree of `size` leaves, deepest sibling first.
 *  `reader.readHashes(nodes)` (sync or async) returns the hash of every requested complete
 *  subtree { level, n }, in order, in one call: web/tiles.js's TileHashReader is one. */
export async function inclusionProof(index, size, reader) {
  const i = checkSize(index, "leaf index");
  const s = checkSize(size, "tree size");
  if (i >= s) fail("malformed", "leaf index must be smaller than the tree size");
  return hashesOfRanges(inclusionRanges(i, s), reader);
}

/** The consistency proof from the tree of `size1` leaves to the tree of `size2` (empty when
 *  size1 is 0 or equals size2), read as inclusionProof reads. */
export async function consistencyProof(size1, size2, reader) {
  const a = checkSize(size1, "first tree size");
  const b = checkSize(size2, "second tree size");
  if (a > b) fail("malformed", "the first tree size must not exceed the second");
  return hashesOfRanges(consistencyRanges(a, b), reader);
}

/** MTH of a whole list of leaf hashes (for tests and small trees). */
export function rootFromLeafHashes(leafHashes) {
  let level = leafHashes.map((h, i) => checkHash(h, `leaf hash ${i}`));
  if (level.length === 0) return EMPTY_ROOT;
  while (level.length > 1) {
    const next = pairHashes(level);
    if (level.length & 1) next.push(level.at(-1));
    level = next;
  }
  return level[0];
}

/** Length of a valid inclusion proof for index in a tree of size. */
function inclusionLength(index, size) {
  const inner = bitLength(index ^ (size - 1n));
  return inner + popCount(index >> BigInt(inner));
}

/** Check that `leaf` sits at `index` of the tree of `size` leaves whose root is `root`
 *  (RFC 9162 2.1.3.2). Throws MerkleError; returns true only when the proof leads to root. */
export function verifyInclusion(leaf, index, size, proof, root) {
  const s = checkSize(size, "tree size");
  const i = checkSize(index, "leaf index");
  checkHash(leaf, "leaf hash");
  checkHash(root, "root");
  const path = checkProof(proof);
  if (i >= s) fail("malformed", "leaf index must be smaller than the tree size");
  const want = inclusionLength(i, s);
  if (path.length !== want) {
    fail("bad_proof", `an inclusion proof for index ${i} in a tree of ${s} has ${want} hashes, got ${path.length}`);
  }
  let fn = i;
  let sn = s - 1n;
  let r = leaf;
  for (const p of path) {
    if (fn & 1n || fn === sn) {
      r = nodeHash(p, r);
      while (!(fn & 1n) && fn) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (!equal(r, root)) fail("bad_proof", "inclusion proof does not lead to the expected root");
  return true;
}

/** Length of a valid consistency proof for 0 < size1 < size2. */
function consistencyLength(size1, size2) {
  const shift = bitLength(size1 & -size1) - 1;
  const inner = bitLength((size1 - 1n) ^ (size2 - 1n));
  const border = popCount((size1 - 1n) >> BigInt(inner));
  return inner - shift + border + (size1 === 1n << BigInt(shift) ? 0 : 1);
}

/** Check that the tree of `size2` leaves with `root2` extends the one of `size1` with `root1`
 *  (RFC 9162 2.1.4.2): the log only appended. Equal sizes need an empty proof and equal roots;
 *  size1 = 0 an empty proof and the empty root. Throws MerkleError; returns true otherwise. */
export function verifyConsistency(size1, size2, proof, root1, root2) {
  const a = checkSize(size1, "first tree size");
  const b = checkSize(size2, "second tree size");
  const path = checkProof(proof);
  if (a > b) fail("malformed", "the first tree size must not exceed the second");
  if (a === b && a > 0n) {
    // As crypto/merkle.py and transparency-dev: only emptiness and equality are looked at.
    if (!(root1 instanceof Uint8Array) || !(root2 instanceof Uint8Array)) fail("malformed", "roots must be bytes");
    if (path.length) fail("bad_proof", "a consistency proof between equal sizes must be empty");
    if (!equal(root1, root2)) {
      checkHash(root1, "first root");
      checkHash(root2, "second root");
      fail("bad_proof", "trees of equal size have different roots");
    }
    return true;
  }
  const first = checkHash(root1, "first root");
  const second = checkHash(root2, "second root");
  if (a === 0n) {
    if (path.length) fail("bad_proof", "a consistency proof from the empty tree must be empty");
    if (!equal(first, EMPTY_ROOT) || (b === 0n && !equal(second, EMPTY_ROOT))) {
      fail("bad_proof", "the root of the empty tree is not SHA-256 of nothing");
    }
    return true;
  }
  const want = consistencyLength(a, b);
  if (path.length !== want) {
    fail("bad_proof", `a consistency proof from ${a} to ${b} has ${want} hashes, got ${path.length}`);
  }
  const hashes = (a & (a - 1n)) === 0n ? [first, ...path] : path;
  let fn = a - 1n;
  let sn = b - 1n;
  while (fn & 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = hashes[0];
  let sr = hashes[0];
  for (const c of hashes.slice(1)) {
    if (fn & 1n || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!(fn & 1n) && fn) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) fail("bad_proof", "consistency proof does not reach the top of the second tree");
  if (!equal(fr, first)) fail("bad_proof", "consistency proof does not lead to the first root");
  if (!equal(sr, second)) fail("bad_proof", "consistency proof does not lead to the second root");
  return true;
}
