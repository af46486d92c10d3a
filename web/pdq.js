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
 * One box pass along a line (the reference's running float32 sum): `line` holds the n input
 * samples; output o (sum / count, float32) goes to out[outAt + o].
 */
function boxLine(line, n, window, counts, out, outAt) {
  const half = (window + 2) >> 1;
  const fround = Math.fround;
  let sum = 0.0;
  for (let i = 0; i < half - 1; i++) sum = fround(sum + line[i]);
  // Growing: only samples enter. Steady: one enters, one leaves. Shrinking: only leave.
  const grow = Math.min(window - half + 1, n);
  let o = 0;
  for (; o < grow; o++) {
    sum = fround(sum + line[o + half - 1]);
    out[outAt + o] = sum / counts[o];
  }
  const steady = n - half + 1;
  for (; o < steady; o++) {
    sum = fround(fround(sum + line[o + half - 1]) - line[o + half - 1 - window]);
    out[outAt + o] = sum / window;
  }
  for (; o < n; o++) {
    sum = fround(sum - line[o + half - 1 - window]);
    out[outAt + o] = sum / counts[o];
  }
}

/**
 * The same pass, keeping only the outputs at the 64 positions `keep` (increasing): output
 * keep[j] goes to out[outAt + j * outStep]. Same operations in the same order as boxLine.
 */
function boxLineKeep(line, n, window, counts, out, outAt, outStep, keep) {
  const half = (window + 2) >> 1;
  const fround = Math.fround;
  let sum = 0.0;
  for (let i = 0; i < half - 1; i++) sum = fround(sum + line[i]);
  let k = 0;
  for (let o = 0; o < n && k < 64; o++) {
    const enter = o + half - 1;
    if (enter < n) sum = fround(sum + line[enter]);
    if (enter >= window) sum = fround(sum - line[enter - window]);
    while (k < 64 && keep[k] === o) {
      out[outAt + k * outStep] = sum / counts[o];
      k++;
    }
  }
}

/**
 * The same box pass down every column of a rows x cols float32 array, in place: a state vector
 * holds one running sum per column, so memory is read row by row. Rows already overwritten but
 * still needed as the leaving sample are kept in a ring of window + 1 rows.
 */
function boxColumnsInPlace(buf, rows, cols, window) {
  const half = Math.floor((window + 2) / 2);
  const counts = boxCounts(rows, window);
  const state = new Float32Array(cols);
  const ringRows = window + 1;
  const ring = new Float32Array(ringRows * cols);
  for (let i = 0; i < half - 1; i++) {
    const at = i * cols;
    for (let c = 0; c < cols; c++) state[c] = state[c] + buf[at + c];
  }
  for (let o = 0; o < rows; o++) {
    const enter = o + half - 1;
    const leave = enter - window;
    const enterAt = enter < rows ? enter * cols : -1;
    const leaveAt = leave >= 0 ? (leave % ringRows) * cols : -1;
    const ringAt = (o % ringRows) * cols;
    const outAt = o * cols;
    const count = counts[o];
    // Keep the original row o: it leaves the window at a later step (leave > o is never read
    // from buf, it is already overwritten by then).
    ring.set(buf.subarray(outAt, outAt + cols), ringAt);
    if (enterAt >= 0 && leaveAt >= 0) {
      for (let c = 0; c < cols; c++) {
        const s = Math.fround(Math.fround(state[c] + buf[enterAt + c]) - ring[leaveAt + c]);
        state[c] = s;
        buf[outAt + c] = s / count;
      }
    } else if (enterAt >= 0) {
      for (let c = 0; c < cols; c++) {
        const s = state[c] + buf[enterAt + c];
        state[c] = s;
        buf[outAt + c] = state[c] / count;
      }
    } else if (leaveAt >= 0) {
      for (let c = 0; c < cols; c++) {
        const s = state[c] - ring[leaveAt + c];
        state[c] = s;
        buf[outAt + c] = state[c] / count;
      }
    } else {
      for (let c = 0; c < cols; c++) buf[outAt + c] = state[c] / count;
    }
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

/**
 * Builds one PDQ hash from pixel rows given top to bottom, in strips of any height.
 * `addRGBA(rgba, rows)` takes RGBA bytes (a canvas's ImageData; alpha ignored), `addRGB`
 * packed RGB, `addLuma` float luma (rounded to float32). `finish()` returns {hash, quality}.
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
    this.buf = new Float32Array(width * height);
    this.line = new Float32Array(width);
    this.rowWindow = windowSize(width);
    this.rowCounts = boxCounts(width, this.rowWindow);
  }

  _emitLine() {
    const at = this.row * this.width;
    if (this.filter) {
      boxLine(this.line, this.width, this.rowWindow, this.rowCounts, this.buf, at);
    } else {
      this.buf.set(this.line, at);
    }
    this.row++;
  }

  _checkRows(rows) {
    if (!Number.isInteger(rows) || rows < 0 || this.row + rows > this.height) {
      throw new RangeError("more pixel rows than the picture's height");
    }
  }

  /** Luma as the pdqhash binding computes it: float32((299 R + 587 G + 114 B) / 1000). The
   * numerator is an exact integer; the double quotient stored into the Float32Array is rounded
   * once more, which gives the correctly rounded float32 quotient (double rounding is harmless
   * for a division when the wider format has more than 2 x 24 + 2 bits). */
  addRGBA(rgba, rows) {
    this._checkRows(rows);
    if (this.tooSmall) return void (this.row += rows);
    const w = this.width;
    const line = this.line;
    for (let r = 0; r < rows; r++) {
      let p = r * w * 4;
      for (let c = 0; c < w; c++, p += 4) {
        line[c] = (299 * rgba[p] + 587 * rgba[p + 1] + 114 * rgba[p + 2]) / 1000;
      }
      this._emitLine();
    }
  }

  /** The same from BGRA/BGRX bytes (a VideoFrame's native layout). */
  addBGRA(bgra, rows) {
    this._checkRows(rows);
    if (this.tooSmall) return void (this.row += rows);
    const w = this.width;
    const line = this.line;
    for (let r = 0; r < rows; r++) {
      let p = r * w * 4;
      for (let c = 0; c < w; c++, p += 4) {
        line[c] = (299 * bgra[p + 2] + 587 * bgra[p + 1] + 114 * bgra[p]) / 1000;
      }
      this._emitLine();
    }
  }

  addRGB(rgb, rows) {
    this._checkRows(rows);
    if (this.tooSmall) return void (this.row += rows);
    const w = this.width;
    const line = this.line;
    for (let r = 0; r < rows; r++) {
      let p = r * w * 3;
      for (let c = 0; c < w; c++, p += 3) {
        line[c] = (299 * rgb[p] + 587 * rgb[p + 1] + 114 * rgb[p + 2]) / 1000;
      }
      this._emitLine();
    }
  }

  addLuma(luma, rows) {
    this._checkRows(rows);
    if (this.tooSmall) return void (this.row += rows);
    const w = this.width;
    for (let r = 0; r < rows; r++) {
      this.line.set(luma.subarray(r * w, (r + 1) * w));
      for (let c = 0; c < w; c++) {
        if (!Number.isFinite(this.line[c])) throw new RangeError("luma must be finite");
      }
      this._emitLine();
    }
  }

  finish() {
    if (this.row !== this.height) throw new RangeError("fewer pixel rows than the picture's height");
    if (this.tooSmall) return { hash: ZERO_HASH, quality: 0 };
    const { width: cols, height: rows } = this;
    let block;
    if (!this.filter) {
      block = this.buf;
    } else {
      const colWindow = windowSize(rows);
      // Round 1: rows were filtered as they arrived; now the columns.
      boxColumnsInPlace(this.buf, rows, cols, colWindow);
      // Round 2: rows again, keeping only the 64 sampled columns (rows x 64)...
      const keepCols = samplePositions(cols);
      const picked = new Float32Array(rows * 64);
      for (let r = 0; r < rows; r++) {
        this.line.set(this.buf.subarray(r * cols, (r + 1) * cols));
        boxLineKeep(this.line, cols, this.rowWindow, this.rowCounts, picked, r * 64, 1, keepCols);
      }
      this.buf = null;
      // ...then the columns, keeping only the 64 sampled rows.
      const keepRows = samplePositions(rows);
      const colCounts = boxCounts(rows, colWindow);
      const column = new Float32Array(rows);
      block = new Float32Array(64 * 64);
      for (let j = 0; j < 64; j++) {
        for (let r = 0; r < rows; r++) column[r] = picked[r * 64 + j];
        boxLineKeep(column, rows, colWindow, colCounts, block, j, 64, keepRows);
      }
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
