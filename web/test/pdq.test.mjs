// Pure-function tests for web/pdq.js and web/kinds.js under Node's test runner (node --test).
// Bit-exactness against hashing/pdq.py is tested from Python (tests/web/test_web_fingerprint.py).
import assert from "node:assert/strict";
import { test } from "node:test";
import { PdqBuilder, hammingDistance, pdqFromLuma, pdqFromRGB, samplePositions, windowSize } from "../pdq.js";
import { countGifFrames, declaredSize, isHeif, sniffHead } from "../kinds.js";

function noise(n, seed = 1) {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

test("pictures under 5 pixels a side hash to zero with quality 0", () => {
  assert.deepEqual(pdqFromRGB(noise(4 * 100 * 3), 100, 4), { hash: "0".repeat(64), quality: 0 });
});

test("window sizes and sample positions follow the reference", () => {
  assert.equal(windowSize(1600), 13);
  assert.equal(windowSize(1004), 8);
  assert.deepEqual(Array.from(samplePositions(1004).slice(0, 3)), [7, 23, 39]);
  assert.deepEqual(Array.from(samplePositions(1600).slice(0, 3)), [12, 37, 62]);
});

test("the hash does not depend on how rows are split into strips", () => {
  const [w, h] = [301, 207];
  const rgba = noise(w * h * 4, 3);
  const whole = new PdqBuilder(w, h);
  whole.addRGBA(rgba, h);
  const strips = new PdqBuilder(w, h);
  for (let top = 0; top < h; top += 50) {
    const rows = Math.min(50, h - top);
    strips.addRGBA(rgba.subarray(top * w * 4, (top + rows) * w * 4), rows);
  }
  assert.deepEqual(strips.finish(), whole.finish());
});

test("strips of any height, BGRA and clamped bytes give the same hash", () => {
  const [w, h] = [157, 131];
  const rgba = noise(w * h * 4, 9);
  const whole = new PdqBuilder(w, h);
  whole.addRGBA(new Uint8ClampedArray(rgba.buffer), h);
  const want = whole.finish();
  const bgra = rgba.slice();
  for (let i = 0; i < bgra.length; i += 4) [bgra[i], bgra[i + 2]] = [rgba[i + 2], rgba[i]];
  for (const step of [1, 2, 3, 5, 7, 130]) {
    const b = new PdqBuilder(w, h);
    for (let top = 0; top < h; top += step) {
      const rows = Math.min(step, h - top);
      b.addBGRA(bgra.subarray(top * w * 4, (top + rows) * w * 4), rows);
    }
    assert.deepEqual(b.finish(), want, `strips of ${step} rows`);
  }
});

// pdq.js multiplies where the reference divides; these pin that the float32 results agree.
test("luma: numerator times 0.001 rounds to float32 as numerator / 1000, for every numerator", () => {
  for (let n = 0; n <= 255 * 1000; n++) {
    if (Math.fround(n * 0.001) !== Math.fround(n / 1000)) assert.fail(`numerator ${n}`);
  }
});

test("box outputs: a float32 sum times 1/count rounds as sum / count", () => {
  const bits = new Uint32Array(1);
  const f32 = new Float32Array(bits.buffer);
  let x = 7;
  for (const count of [1, 2, 3, 5, 7, 9, 13, 24, 31, 94, 127, 255, 1023, 4097, 65535, 1048575]) {
    const inv = 1 / count;
    for (let i = 0; i < 20000; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      // Positive and negative floats from 2^-80 to 2^50 (PDQ's sums are 0 or in that range).
      bits[0] = ((x & 0x80000000) | (((47 + (x % 130)) & 0xff) << 23)) ^ (Math.imul(x, 2654435761) & 0x7fffff);
      const s = f32[0];
      if (Math.fround(s * inv) !== Math.fround(s / count)) assert.fail(`${s} / ${count}`);
    }
  }
});

test("RGB and luma entry points agree; 128 bits are set", () => {
  const [w, h] = [90, 70];
  const rgb = noise(w * h * 3, 5);
  const luma = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) luma[i] = (299 * rgb[3 * i] + 587 * rgb[3 * i + 1] + 114 * rgb[3 * i + 2]) / 1000;
  const a = pdqFromRGB(rgb, w, h);
  assert.deepEqual(pdqFromLuma(luma, w, h), a);
  assert.equal(hammingDistance(a.hash, "0".repeat(64)), 128);
});

test("builders refuse wrong row counts and non-finite luma", () => {
  const b = new PdqBuilder(10, 10);
  assert.throws(() => b.addRGB(new Uint8Array(300), 11), RangeError);
  assert.throws(() => b.finish(), RangeError);
  assert.throws(() => pdqFromLuma(new Float32Array(100).fill(NaN), 10, 10), RangeError);
  assert.throws(() => new PdqBuilder(0, 10), RangeError);
});

test("hamming distance checks its input", () => {
  assert.equal(hammingDistance("f".repeat(64), "0".repeat(64)), 256);
  assert.throws(() => hammingDistance("F".repeat(64), "0".repeat(64)), TypeError);
});

const bytes = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0));

test("kinds are sniffed from bytes as hashing/kinds.py does", () => {
  assert.equal(sniffHead(bytes("\xff\xd8\xff\xe0")).kind, "image");
  assert.equal(sniffHead(bytes("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")).format, "heif");
  assert.ok(isHeif(bytes("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic")));
  assert.equal(sniffHead(bytes("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2")).kind, "video");
  assert.equal(sniffHead(bytes("\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42")).kind, "file");
  assert.equal(sniffHead(bytes("\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm")).format, "webm");
  assert.equal(sniffHead(bytes("hello")).kind, "file");
});

test("declared sizes are read from headers", () => {
  const png = bytes("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00N \x00\x00\x03\xe8\x08\x02\x00\x00\x00");
  assert.deepEqual(declaredSize(png), { width: 20000, height: 1000 });
  const jpeg = bytes("\xff\xd8\xff\xe0\x00\x04ab\xff\xc0\x00\x11\x08\x0b\xb8\x0f\xa0\x03");
  assert.deepEqual(declaredSize(jpeg), { width: 4000, height: 3000 });
  assert.equal(declaredSize(bytes("nothing")), null);
});

test("GIF frames are counted from the block structure", () => {
  const frame = "\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x4c\x01\x00";
  const one = bytes("GIF89a\x01\x00\x01\x00\x00\x00\x00" + frame + ";");
  const two = bytes("GIF89a\x01\x00\x01\x00\x00\x00\x00" + "\x21\xf9\x04\x00\x00\x00\x00\x00" + frame + frame + ";");
  assert.equal(countGifFrames(one), 1);
  assert.equal(countGifFrames(two), 2);
  assert.equal(countGifFrames(two.subarray(0, 20)), 0);
});

test("luma equals the pdqhash binding's float64 sum rounded once, for all 2^24 colours", () => {
  const ours = new Float32Array(1);
  let differ = 0;
  for (let r = 0; r < 256; r++) {
    for (let g = 0; g < 256; g++) {
      for (let b = 0; b < 256; b++) {
        ours[0] = (299 * r + 587 * g + 114 * b) / 1000;
        if (ours[0] !== Math.fround(0.299 * r + 0.587 * g + 0.114 * b)) differ++;
      }
    }
  }
  assert.equal(differ, 0);
});
