// Decide image / video / file from a file's leading bytes, never from its name: the same rules
// as hashing/kinds.py (specs/hash-output.md, section 5), so the browser gives the same `kind`.
// Pure functions over Uint8Array.

export const SNIFF_BYTES = 4096;

const IMAGE_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "mif2", "avif", "avio"]);
const IMAGE_SEQUENCE_BRANDS = new Set(["msf1", "hevs", "avis"]);
const AUDIO_BRANDS = new Set(["M4A ", "M4B ", "M4P ", "F4A ", "F4B "]);
const VIDEO_BRANDS = new Set([
  "isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9",
  "mp41", "mp42", "mp71", "avc1", "hvc1", "hev1", "av01", "dash", "msdh",
  "M4V ", "M4VH", "M4VP", "qt  ", "3gp4", "3gp5", "3gp6", "3gp7", "3gp8",
  "3gp9", "3gg6", "3g2a", "3g2b", "3g2c", "f4v ", "f4p ", "mmp4", "MSNV",
  "NDAS", "XAVC", "mj2s", "mjp2", "CAEP", "caqv",
]);
const QT_ATOMS = new Set(["moov", "mdat", "wide", "free", "skip", "pnot"]);
const HEIF_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs", "mif1", "msf1"]);

function ascii(b, start, end) {
  let s = "";
  for (let i = start; i < Math.min(end, b.length); i++) s += String.fromCharCode(b[i]);
  return s;
}

function startsWith(b, bytes, at = 0) {
  if (b.length < at + bytes.length) return false;
  for (let i = 0; i < bytes.length; i++) if (b[at + i] !== bytes[i]) return false;
  return true;
}

function u32be(b, at) {
  return ((b[at] << 24) >>> 0) + (b[at + 1] << 16) + (b[at + 2] << 8) + b[at + 3];
}

function u32le(b, at) {
  return b[at] + (b[at + 1] << 8) + (b[at + 2] << 16) + ((b[at + 3] << 24) >>> 0);
}

/** {kind: "image"|"video"|"file", format} from the first bytes; a GIF is an image here. */
export function sniffHead(head) {
  const other = { kind: "file", format: "" };
  if (startsWith(head, [0xff, 0xd8, 0xff])) return { kind: "image", format: "jpeg" };
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: "image", format: "png" };
  const six = ascii(head, 0, 6);
  if (six === "GIF87a" || six === "GIF89a") return { kind: "image", format: "gif" };
  if (ascii(head, 0, 4) === "RIFF" && head.length >= 12) {
    const form = ascii(head, 8, 12);
    if (form === "WEBP") return { kind: "image", format: "webp" };
    if (form === "AVI " || form === "AVIX" || form === "AMV ") return { kind: "video", format: "avi" };
    return other;
  }
  const four = ascii(head, 0, 4);
  if (four === "II*\0" || four === "MM\0*" || four === "II+\0" || four === "MM\0+") return { kind: "image", format: "tiff" };
  if (head.length >= 18 && four.startsWith("BM") && [12, 16, 40, 52, 56, 64, 108, 124].includes(u32le(head, 14))) {
    return { kind: "image", format: "bmp" };
  }
  if (ascii(head, 4, 8) === "ftyp") return sniffFtyp(head);
  if (head.length >= 8 && QT_ATOMS.has(ascii(head, 4, 8)) && u32be(head, 0) >= 8) return { kind: "video", format: "mov" };
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) return sniffEbml(head);
  if (startsWith(head, [0x46, 0x4c, 0x56, 0x01])) return { kind: "video", format: "flv" };
  if (startsWith(head, [0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11])) return { kind: "video", format: "asf" };
  if (startsWith(head, [0x00, 0x00, 0x01, 0xba])) return { kind: "video", format: "mpeg-ps" };
  if (head.length >= 188 * 4 && [0, 1, 2, 3].every((i) => head[i * 188] === 0x47)) return { kind: "video", format: "mpeg-ts" };
  return other;
}

function sniffFtyp(head) {
  const other = { kind: "file", format: "" };
  const size = u32be(head, 0);
  if (size < 16 || size % 4) return other;
  const major = ascii(head, 8, 12);
  const compatible = [];
  for (let i = 16; i < Math.min(size, head.length) - 3; i += 4) compatible.push(ascii(head, i, i + 4));
  if (AUDIO_BRANDS.has(major)) return other;
  if (IMAGE_BRANDS.has(major) || IMAGE_SEQUENCE_BRANDS.has(major)) return { kind: "image", format: "heif" };
  if (VIDEO_BRANDS.has(major)) return { kind: "video", format: major === "qt  " ? "mov" : "mp4" };
  if (compatible.some((b) => VIDEO_BRANDS.has(b))) return { kind: "video", format: "mp4" };
  if (compatible.some((b) => IMAGE_BRANDS.has(b) || IMAGE_SEQUENCE_BRANDS.has(b))) return { kind: "image", format: "heif" };
  return other;
}

function sniffEbml(head) {
  let at = -1;
  for (let i = 4; i < Math.min(64, head.length - 1); i++) {
    if (head[i] === 0x42 && head[i + 1] === 0x82) {
      at = i;
      break;
    }
  }
  if (at < 0 || at + 3 > head.length) return { kind: "file", format: "" };
  const sizeByte = head[at + 2];
  if (!(sizeByte & 0x80)) return { kind: "file", format: "" };
  const doctype = ascii(head, at + 3, at + 3 + (sizeByte & 0x7f));
  if (doctype === "webm") return { kind: "video", format: "webm" };
  if (doctype === "matroska") return { kind: "video", format: "matroska" };
  return { kind: "file", format: "" };
}

/** True for HEIF/HEIC brands (what an iPhone saves by default). */
export function isHeif(head) {
  return ascii(head, 4, 8) === "ftyp" && HEIF_BRANDS.has(ascii(head, 8, 12));
}

/**
 * Count a GIF's image descriptors up to `stopAt` by walking its block structure (no pixels
 * decoded), as hashing.kinds.count_gif_frames: a GIF with two or more frames is a video.
 * `bytes` is the whole file (GIFs are small; the caller bounds the size).
 */
export function countGifFrames(bytes, stopAt = 2) {
  let p = 0;
  const take = (n) => {
    if (p + n > bytes.length) return null;
    const at = p;
    p += n;
    return at;
  };
  const skipSubBlocks = () => {
    for (;;) {
      const at = take(1);
      if (at === null) return false;
      if (bytes[at] === 0) return true;
      if (take(bytes[at]) === null) return false;
    }
  };
  const header = take(13);
  if (header === null) return 0;
  const sig = ascii(bytes, 0, 6);
  if (sig !== "GIF87a" && sig !== "GIF89a") return 0;
  const flags = bytes[10];
  if (flags & 0x80 && take(3 << ((flags & 7) + 1)) === null) return 0;
  let frames = 0;
  while (frames < stopAt) {
    const at = take(1);
    if (at === null || bytes[at] === 0x3b) break;
    if (bytes[at] === 0x21) {
      if (take(1) === null || !skipSubBlocks()) break;
    } else if (bytes[at] === 0x2c) {
      const d = take(9);
      if (d === null) break;
      const local = bytes[d + 8];
      if (local & 0x80 && take(3 << ((local & 7) + 1)) === null) break;
      if (take(1) === null || !skipSubBlocks()) break;
      frames++;
    } else {
      break;
    }
  }
  return frames;
}

/**
 * Declared width and height from the header (JPEG SOF, PNG IHDR, GIF, WebP, BMP), before any
 * pixel is decoded, so a decompression bomb is refused for free; null when not found.
 */
export function declaredSize(head) {
  if (startsWith(head, [0xff, 0xd8])) {
    let p = 2;
    while (p + 9 < head.length) {
      if (head[p] !== 0xff) return null;
      const marker = head[p + 1];
      if (marker === 0xff) {
        p++;
        continue;
      }
      const len = (head[p + 2] << 8) | head[p + 3];
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { height: (head[p + 5] << 8) | head[p + 6], width: (head[p + 7] << 8) | head[p + 8] };
      }
      p += 2 + len;
    }
    return null;
  }
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47]) && head.length >= 24 && ascii(head, 12, 16) === "IHDR") {
    return { width: u32be(head, 16), height: u32be(head, 20) };
  }
  if (ascii(head, 0, 3) === "GIF" && head.length >= 10) {
    return { width: head[6] | (head[7] << 8), height: head[8] | (head[9] << 8) };
  }
  if (ascii(head, 0, 4) === "RIFF" && ascii(head, 8, 12) === "WEBP" && head.length >= 30) {
    const chunk = ascii(head, 12, 16);
    if (chunk === "VP8X") {
      return { width: 1 + (head[24] | (head[25] << 8) | (head[26] << 16)), height: 1 + (head[27] | (head[28] << 8) | (head[29] << 16)) };
    }
    if (chunk === "VP8 ") return { width: (head[26] | (head[27] << 8)) & 0x3fff, height: (head[28] | (head[29] << 8)) & 0x3fff };
    if (chunk === "VP8L") {
      const bits = u32le(head, 21);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    return null;
  }
  if (ascii(head, 0, 2) === "BM" && head.length >= 26 && u32le(head, 14) >= 40) {
    return { width: Math.abs(u32le(head, 18) | 0), height: Math.abs(u32le(head, 22) | 0) };
  }
  return null;
}
