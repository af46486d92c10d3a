// PDQ, Meta's 256-bit perceptual image hash, in plain JavaScript, bit for bit as hashing/pdq.py.
//
// Partners compare our hashes with hashes made by Meta's C++ reference, so every step keeps the
// reference's float32 arithmetic in the reference's order (specs/pdq.md, section 3): each
// addition, subtraction, product and quotient is rounded to float32, either by Math.fround or
// by storing into a Float32Array. (Rounding a double result of +, -, *, / on float32 inputs
// to float32 gives the float32 result exactly: a double has more than 2 x 24 + 2 bits.)
//
// Memory: the builder keeps one float32 per pixel (4 bytes/pixel) plus a few lines. Pixels
// arrive in strips of rows (RGBA from a canvas), are turned into luma and filtered along the
// row at once, so no full-size RGBA or unfiltered luma copy is ever held here.
//
// Pure: no DOM, no I/O, no state between hashes; runs in a Worker, a page or Node.

export const MIN_HASHABLE_DIM = 5;
export const QUALITY_FLOOR = 50;
export const MATCH_THRESHOLD = 31;

/** Box width per pass: ceil(n / 128), so two passes span one of the 64 output cells. */
export function windowSize(n) {
  return Math.floor((n + 127) / 128);
}

/** What output o of a box pass over n samples divides by: the samples its window covers. */
function boxCounts(n, window) {
  const half = Math.floor((window + 2) / 2);
  const counts = new Float32Array(n);
  for (let o = 0; o < n; o++) {
    const first = Math.max(o + half - window, 0);
    const last = Math.min(o + half - 1, n - 1);
    counts[o] = last - first + 1;
  }
  return counts;
}

/** The reference's decimation picks the sample nearest each of the 64 cells' centres. */
export function samplePositions(n) {
  const out = new Int32Array(64);
  for (let i = 0; i < 64; i++) out[i] = Math.trunc(((i + 0.5) * n) / 64);
  return out;
}

/**
 * 1 / count for every output of a box pass over n samples. Dividing by an integer count
 * c < 2^26 and multiplying by the double 1/c give the same float32 once rounded, for every
 * float32 sum whose quotient is a normal float32 (the exact quotient is either a float32 or
 * at least 2^-24 ulp / c away from a rounding boundary, while the double product is within
 * 2^-51 ulp of it). PDQ's sums are 0 or above 2^-80, far from the subnormals, so this is
 * bit-exact and a multiplication is many times cheaper than a division.
 */
function inverseCounts(n, window) {
  const counts = boxCounts(n, window);
  const inv = new Float64Array(n);
  for (let o = 0; o < n; o++) inv[o] = 1 / counts[o];
  return inv;
}

// The box passes below keep the reference's running float32 sum, in its order: the sum of
// the first half - 1 samples, then per output one sample enters (while any are left) and one
// leaves (once the window is full), and the output is sum / count. Each add and subtract is
// rounded to float32 (Math.fround or a Float32Array store). Four lines are filtered in one
// loop: each line's sum is a serial chain of dependent float operations, so four independent
// chains keep the processor busy where one would wait on every rounding.

/** Row box pass over four lines of src (starting at a0..a3) into dst (at d0..d3). */
function boxRows4(src, a0, a1, a2, a3, dst, d0, d1, d2, d3, n, window, inv) {
  const f = Math.fround;
  const half = (window + 2) >> 1;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (let i = 0; i < half - 1; i++) {
    s0 = f(s0 + src[a0 + i]); s1 = f(s1 + src[a1 + i]);
    s2 = f(s2 + src[a2 + i]); s3 = f(s3 + src[a3 + i]);
  }
  const grow = Math.min(window - half + 1, n);
  let o = 0;
  for (; o < grow; o++) {
    const e = o + half - 1;
    s0 = f(s0 + src[a0 + e]); s1 = f(s1 + src[a1 + e]);
    s2 = f(s2 + src[a2 + e]); s3 = f(s3 + src[a3 + e]);
    const q = inv[o];
    dst[d0 + o] = s0 * q; dst[d1 + o] = s1 * q; dst[d2 + o] = s2 * q; dst[d3 + o] = s3 * q;
  }
  const steady = n - half + 1;
  const q = 1 / window;
  for (; o < steady; o++) {
    const e = o + half - 1;
    const l = e - window;
    s0 = f(f(s0 + src[a0 + e]) - src[a0 + l]); s1 = f(f(s1 + src[a1 + e]) - src[a1 + l]);
    s2 = f(f(s2 + src[a2 + e]) - src[a2 + l]); s3 = f(f(s3 + src[a3 + e]) - src[a3 + l]);
    dst[d0 + o] = s0 * q; dst[d1 + o] = s1 * q; dst[d2 + o] = s2 * q; dst[d3 + o] = s3 * q;
  }
  for (; o < n; o++) {
    const l = o + half - 1 - window;
    s0 = f(s0 - src[a0 + l]); s1 = f(s1 - src[a1 + l]);
    s2 = f(s2 - src[a2 + l]); s3 = f(s3 - src[a3 + l]);
    const q = inv[o];
    dst[d0 + o] = s0 * q; dst[d1 + o] = s1 * q; dst[d2 + o] = s2 * q; dst[d3 + o] = s3 * q;
  }
}

/**
 * The same pass over four lines, keeping only the outputs at the 64 increasing positions
 * `keep`: output keep[j] of line k goes to dst[dk + j]. The sums run only as far as keep[63].
 */
function boxRowsKeep4(src, a0, a1, a2, a3, dst, d0, d1, d2, d3, n, window, inv, keep) {
  const f = Math.fround;
  const half = (window + 2) >> 1;
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (let i = 0; i < half - 1; i++) {
    s0 = f(s0 + src[a0 + i]); s1 = f(s1 + src[a1 + i]);
    s2 = f(s2 + src[a2 + i]); s3 = f(s3 + src[a3 + i]);
  }
  const end = keep[63] + 1;
  let k = 0;
  let next = keep[0];
  const grow = Math.min(window - half + 1, n, end);
  let o = 0;
  for (; o < grow; o++) {
    const e = o + half - 1;
    s0 = f(s0 + src[a0 + e]); s1 = f(s1 + src[a1 + e]);
    s2 = f(s2 + src[a2 + e]); s3 = f(s3 + src[a3 + e]);
    for (; next === o; next = keep[++k]) {
      const q = inv[o];
      dst[d0 + k] = s0 * q; dst[d1 + k] = s1 * q; dst[d2 + k] = s2 * q; dst[d3 + k] = s3 * q;
    }
  }
  const steady = Math.min(n - half + 1, end);
  for (; o < steady; o++) {
    const e = o + half - 1;
    const l = e - window;
    s0 = f(f(s0 + src[a0 + e]) - src[a0 + l]); s1 = f(f(s1 + src[a1 + e]) - src[a1 + l]);
    s2 = f(f(s2 + src[a2 + e]) - src[a2 + l]); s3 = f(f(s3 + src[a3 + e]) - src[a3 + l]);
    for (; next === o; next = keep[++k]) {
      const q = inv[o];
      dst[d0 + k] = s0 * q; dst[d1 + k] = s1 * q; dst[d2 + k] = s2 * q; dst[d3 + k] = s3 * q;
    }
  }
  for (; o < end; o++) {
    const l = o + half - 1 - window;
    s0 = f(s0 - src[a0 + l]); s1 = f(s1 - src[a1 + l]);
    s2 = f(s2 - src[a2 + l]); s3 = f(s3 - src[a3 + l]);
    for (; next === o; next = keep[++k]) {
      const q = inv[o];
      dst[d0 + k] = s0 * q; dst[d1 + k] = s1 * q; dst[d2 + k] = s2 * q; dst[d3 + k] = s3 * q;
    }
  }
}

/**
 * One step of a column pass over n columns: the running sums in `state` take the row at
 * `enterAt` of `src` (enterAt < 0: none enters) and lose the row at `leaveAt` (leaveAt < 0:
 * none leaves); the outputs, state * inv, go to dst at outAt (outAt < 0: none, the sums are
 * still filling). Columns are independent, so the loop runs over contiguous memory.
 */
function columnStep(state, src, enterAt, leaveAt, dst, outAt, n, inv) {
  const f = Math.fround;
  if (enterAt >= 0 && leaveAt >= 0) {
    for (let c = 0; c < n; c++) {
      const s = f(f(state[c] + src[enterAt + c]) - src[leaveAt + c]);
      state[c] = s;
      dst[outAt + c] = s * inv;
    }
  } else if (enterAt >= 0 && outAt >= 0) {
    for (let c = 0; c < n; c++) {
      const s = f(state[c] + src[enterAt + c]);
      state[c] = s;
      dst[outAt + c] = s * inv;
    }
  } else if (enterAt >= 0) {
    for (let c = 0; c < n; c++) state[c] = state[c] + src[enterAt + c];
  } else if (leaveAt >= 0) {
    for (let c = 0; c < n; c++) {
      const s = f(state[c] - src[leaveAt + c]);
      state[c] = s;
      dst[outAt + c] = s * inv;
    }
  } else {
    for (let c = 0; c < n; c++) dst[outAt + c] = state[c] * inv;
  }
}

// The reference's 16 x 64 DCT-II matrix, rows 1..16, each entry rounded to float32.
const DCT = (() => {
  const scale = Math.fround(Math.sqrt(2 / 64));
  const m = new Float32Array(16 * 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      m[i * 64 + j] = scale * Math.cos((Math.PI / 2 / 64) * (i + 1) * (2 * j + 1));
    }
  }
  return m;
})();

/** The DCT table, for tests that compare it with hashing.pdq's. */
export function dctMatrix() {
  return DCT.slice();
}

/** B = D A D^T, each entry a float32 sum of float32 products in order k = 0..63. */
function dct16(block) {
  const fround = Math.fround;
  const t = new Float32Array(16 * 64);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 64; j++) {
      let s = 0;
      for (let k = 0; k < 64; k++) s = fround(s + fround(DCT[i * 64 + k] * block[k * 64 + j]));
      t[i * 64 + j] = s;
    }
  }
  const b = new Float32Array(256);
  for (let i = 0; i < 16; i++) {
    for (let j = 0; j < 16; j++) {
      let s = 0;
      for (let k = 0; k < 64; k++) s = fround(s + fround(t[i * 64 + k] * DCT[j * 64 + k]));
      b[i * 16 + j] = s;
    }
  }
  return b;
}

/** Sum of significant gradients over the 64x64 block, scaled to 0..100 (float32, truncated). */
function quality(block) {
  const fround = Math.fround;
  let total = 0;
  for (let i = 0; i < 63; i++) {
    for (let j = 0; j < 64; j++) {
      const d = fround(fround(fround(block[i * 64 + j] - block[(i + 1) * 64 + j]) * 100) / 255);
      total += Math.abs(Math.trunc(d));
    }
  }
  for (let i = 0; i < 64; i++) {
    for (let j = 0; j < 63; j++) {
      const d = fround(fround(fround(block[i * 64 + j] - block[i * 64 + j + 1]) * 100) / 255);
      total += Math.abs(Math.trunc(d));
    }
  }
  return Math.min(Math.floor(total / 90), 100);
}

const HEX = "0123456789abcdef";


/** Bit 16i+j is set when coefficient (i, j) exceeds the median (the 128th smallest); the
 * text prints bit 255 first. */
function bitsToHex(dct) {
  const sorted = Float32Array.from(dct).sort();
  const median = sorted[127];
  let hex = "";
  for (let q = 0; q < 32; q++) {
    let byte = 0;
    for (let t = 0; t < 8; t++) byte = (byte << 1) | (dct[255 - 8 * q - t] > median ? 1 : 0);
    hex += HEX[byte >> 4] + HEX[byte & 15];
  }
  return hex;
}

const ZERO_HASH = "0".repeat(64);
/** Lines filtered per loop (boxRows4, boxRowsKeep4). */
const LANES = 4;

/** Luma of n pixels of `bytes` (stride bytes per pixel; red, green, blue at ro, go, bo) into
 * dst at dstAt: float32((299 R + 587 G + 114 B) / 1000), as the pdqhash binding computes it.
 * The numerator is an exact integer; times 0.001 and rounded to float32 it gives the correctly
 * rounded float32 quotient for every numerator 0..255000 (checked exhaustively in
 * web/test/pdq.test.mjs), and a multiplication is cheaper than a division. */
function lumaLine(bytes, at, stride, ro, go, bo, dst, dstAt, n) {
  for (let c = 0, p = at; c < n; c++, p += stride) {
    dst[dstAt + c] = (299 * bytes[p + ro] + 587 * bytes[p + go] + 114 * bytes[p + bo]) * 0.001;
  }
}

/**
 * Builds one PDQ hash from pixel rows given top to bottom, in strips of any height.
 * `addRGBA(rgba, rows)` takes RGBA bytes (a canvas's ImageData; alpha ignored), `addBGRA`
 * BGRA/BGRX bytes (a VideoFrame's layout), `addRGB` packed RGB, `addLuma` float luma (rounded
 * to float32). `finish()` returns {hash, quality}.
 *
 * The Jarosz filter is streamed: each row is box-filtered along the row as it arrives, the
 * column pass takes it as soon as the rows its window needs are in, and the second row pass
 * filters each column-pass output row at once, keeping the 64 sampled columns, and the second
 * column pass takes those 64 values per row likewise. Memory: 10 lines of the width plus the
 * last ceil(H/128) + 4 filtered rows, full-width and 64 wide; never a float per pixel.
 */
export class PdqBuilder {
  constructor(width, height) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError("a picture needs a positive integer width and height");
    }
    this.width = width;
    this.height = height;
    this.tooSmall = width < MIN_HASHABLE_DIM || height < MIN_HASHABLE_DIM;
    // The reference takes a 64x64 input as already downsampled (no filter at all).
    this.filter = !(width === 64 && height === 64);
    this.row = 0;
    if (this.tooSmall) return;
    this.luma = new Float32Array(LANES * width);
    if (!this.filter) {
      this.block = new Float32Array(64 * 64);
      return;
    }
    this.rowWindow = windowSize(width);
    this.rowInv = inverseCounts(width, this.rowWindow);
    this.colWindow = windowSize(height);
    this.colHalf = (this.colWindow + 2) >> 1;
    this.colInv = inverseCounts(height, this.colWindow);
    // Row-pass outputs still needed by the column pass: the window and the rows of one group.
    this.ringRows = this.colWindow + LANES;
    this.ring = new Float32Array(this.ringRows * width);
    this.state = new Float32Array(width);
    this.cols = new Float32Array(LANES * width); // column-pass outputs awaiting the 2nd row pass
    this.pending = 0;
    this.emitted = 0; // column-pass outputs made so far
    this.keepCols = samplePositions(width);
    // The second row pass's outputs (64 per row) still needed by the second column pass.
    this.picked = new Float32Array(this.ringRows * 64);
    this.state2 = new Float32Array(64);
    this.sink = new Float32Array(64);
    this.picks = 0; // second-row-pass rows made so far
    this.emitted2 = 0; // second-column-pass outputs made so far
    this.keepRows = samplePositions(height);
    this.kept = 0; // rows of the 64x64 block filled
    this.block = new Float32Array(64 * 64);
  }

  _checkRows(rows) {
    if (!Number.isInteger(rows) || rows < 0 || this.row + rows > this.height) {
      throw new RangeError("more pixel rows than the picture's height");
    }
  }

  /** Luma of `rows` rows of bytes (stride bytes per pixel, channel offsets ro, go, bo). */
  _addBytes(bytes, rows, stride, ro, go, bo) {
    this._checkRows(rows);
    if (this.tooSmall) return void (this.row += rows);
    const w = this.width;
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
    for (let r = 0; r < rows; r += LANES) {
      const g = Math.min(LANES, rows - r);
      for (let k = 0; k < g; k++) lumaLine(u8, (r + k) * w * stride, stride, ro, go, bo, this.luma, k * w, w);
      this._lumaRows(g);
    }
  }

  addRGBA(rgba, rows) {
    this._addBytes(rgba, rows, 4, 0, 1, 2);
  }

  addBGRA(bgra, rows) {
    this._addBytes(bgra, rows, 4, 2, 1, 0);
  }

  addRGB(rgb, rows) {
    this._addBytes(rgb, rows, 3, 0, 1, 2);
  }

  addLuma(luma, rows) {
    this._checkRows(rows);
    if (this.tooSmall) return void (this.row += rows);
    const w = this.width;
    for (let r = 0; r < rows; r += LANES) {
      const g = Math.min(LANES, rows - r);
      this.luma.set(luma.subarray(r * w, (r + g) * w));
      for (let c = 0; c < g * w; c++) {
        if (!Number.isFinite(this.luma[c])) throw new RangeError("luma must be finite");
      }
      this._lumaRows(g);
    }
  }

  /** The first g lines of this.luma are the next g rows of the picture. */
  _lumaRows(g) {
    const w = this.width;
    if (!this.filter) {
      this.block.set(this.luma.subarray(0, g * w), this.row * w);
      this.row += g;
      return;
    }
    const at = (k) => ((this.row + Math.min(k, g - 1)) % this.ringRows) * w;
    const lane = (k) => Math.min(k, g - 1) * w;
    // Missing lanes repeat the last row: the same values written to the same place twice.
    boxRows4(this.luma, lane(0), lane(1), lane(2), lane(3), this.ring, at(0), at(1), at(2), at(3), w, this.rowWindow, this.rowInv);
    for (let k = 0; k < g; k++) {
      const r = this.row++;
      const enterAt = (r % this.ringRows) * w;
      if (r < this.colHalf - 1) {
        columnStep(this.state, this.ring, enterAt, -1, this.cols, -1, w, 0);
        continue;
      }
      const leave = r - this.colWindow;
      const leaveAt = leave >= 0 ? (leave % this.ringRows) * w : -1;
      this._columnOut(enterAt, leaveAt);
    }
  }

  /** One column-pass output row (the next one), then the second row pass every LANES rows. */
  _columnOut(enterAt, leaveAt) {
    const w = this.width;
    columnStep(this.state, this.ring, enterAt, leaveAt, this.cols, this.pending * w, w, this.colInv[this.emitted]);
    this.emitted++;
    if (++this.pending === LANES) this._secondRowPass();
  }

  _secondRowPass() {
    const g = this.pending;
    if (g === 0) return;
    const w = this.width;
    const first = this.emitted - g;
    const lane = (k) => Math.min(k, g - 1) * w;
    const out = (k) => ((first + Math.min(k, g - 1)) % this.ringRows) * 64;
    boxRowsKeep4(this.cols, lane(0), lane(1), lane(2), lane(3), this.picked, out(0), out(1), out(2), out(3), w, this.rowWindow, this.rowInv, this.keepCols);
    this.pending = 0;
    for (let k = 0; k < g; k++) {
      const r = this.picks++;
      const enterAt = (r % this.ringRows) * 64;
      if (r < this.colHalf - 1) {
        columnStep(this.state2, this.picked, enterAt, -1, this.sink, -1, 64, 0);
        continue;
      }
      const leave = r - this.colWindow;
      this._secondColumnOut(enterAt, leave >= 0 ? (leave % this.ringRows) * 64 : -1);
    }
  }

  /** One output of the second column pass; kept when it is one of the 64 sampled rows. */
  _secondColumnOut(enterAt, leaveAt) {
    const o = this.emitted2++;
    columnStep(this.state2, this.picked, enterAt, leaveAt, this.sink, 0, 64, this.colInv[o]);
    for (; this.kept < 64 && this.keepRows[this.kept] === o; this.kept++) this.block.set(this.sink, this.kept * 64);
  }

  finish() {
    if (this.row !== this.height) throw new RangeError("fewer pixel rows than the picture's height");
    if (this.tooSmall) return { hash: ZERO_HASH, quality: 0 };
    let block = this.block;
    if (this.filter) {
      const rows = this.height;
      const w = this.width;
      // The column outputs whose window runs past the last row: only rows leave.
      while (this.emitted < rows) {
        const leave = this.emitted + this.colHalf - 1 - this.colWindow;
        this._columnOut(-1, leave >= 0 ? (leave % this.ringRows) * w : -1);
      }
      this._secondRowPass();
      while (this.emitted2 < rows) {
        const leave = this.emitted2 + this.colHalf - 1 - this.colWindow;
        this._secondColumnOut(-1, leave >= 0 ? (leave % this.ringRows) * 64 : -1);
      }
      this.ring = this.cols = this.state = this.picked = null;
    }
    return { hash: bitsToHex(dct16(block)), quality: quality(block) };
  }
}

/** PDQ of packed RGB (height x width x 3 bytes), as hashing.pdq.hash_rgb. */
export function pdqFromRGB(rgb, width, height) {
  const b = new PdqBuilder(width, height);
  b.addRGB(rgb, height);
  return b.finish();
}

/** PDQ of RGBA bytes (alpha ignored), as hashing.pdq.hash_rgb on the RGB channels. */
export function pdqFromRGBA(rgba, width, height) {
  const b = new PdqBuilder(width, height);
  b.addRGBA(rgba, height);
  return b.finish();
}

/** PDQ of float luma (height x width), as hashing.pdq.hash_luma. */
export function pdqFromLuma(luma, width, height) {
  const b = new PdqBuilder(width, height);
  b.addLuma(luma, height);
  return b.finish();
}

/** Hamming distance between two 64-hex hashes. */
export function hammingDistance(a, b) {
  if (!/^[0-9a-f]{64}$/.test(a) || !/^[0-9a-f]{64}$/.test(b)) {
    throw new TypeError("a PDQ hash is exactly 64 lowercase hex digits");
  }
  let d = 0;
  for (let i = 0; i < 64; i += 8) {
    let x = parseInt(a.slice(i, i + 8), 16) ^ parseInt(b.slice(i, i + 8), 16);
    while (x) {
      x &= x - 1;
      d++;
    }
  }
  return d;
}
