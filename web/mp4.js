// The first video track's frame count and average frame rate from an MP4/MOV's `moov` box,
// which vPDQ's frame selection needs (specs/vpdq.md, 3.3 and 3.5) and <video> does not give.
// Only box headers are read from the Blob, then the `moov` box itself (bounded), never the media.

const MAX_MOOV_BYTES = 64 << 20;

function u32(b, at) {
  return b.getUint32(at);
}

function boxType(b, at) {
  return String.fromCharCode(b.getUint8(at), b.getUint8(at + 1), b.getUint8(at + 2), b.getUint8(at + 3));
}

/** Child boxes of the box body b[start, end): [{type, start (body), end}]. */
function children(b, start, end) {
  const out = [];
  let at = start;
  while (at + 8 <= end) {
    let size = u32(b, at);
    const type = boxType(b, at + 4);
    let header = 8;
    if (size === 1) {
      if (at + 16 > end) break;
      size = Number(b.getBigUint64(at + 8));
      header = 16;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < header || at + size > end) break;
    out.push({ type, start: at + header, end: at + size });
    at += size;
  }
  return out;
}

function find(b, box, path) {
  let current = [box];
  for (const type of path) {
    const next = current.flatMap((c) => children(b, c.start, c.end)).filter((c) => c.type === type);
    if (!next.length) return null;
    current = next;
  }
  return current[0];
}

/** Locate `moov` among the top-level boxes by reading 16-byte headers only. */
async function readMoov(blob) {
  let at = 0;
  while (at + 8 <= blob.size) {
    const head = new DataView(await blob.slice(at, at + 16).arrayBuffer());
    let size = head.getUint32(0);
    const type = boxType(head, 4);
    let header = 8;
    if (size === 1 && head.byteLength >= 16) {
      size = Number(head.getBigUint64(8));
      header = 16;
    } else if (size === 0) {
      size = blob.size - at;
    }
    if (size < header) return null;
    if (type === "moov") {
      if (size > MAX_MOOV_BYTES) return null;
      return new DataView(await blob.slice(at + header, at + size).arrayBuffer());
    }
    at += size;
  }
  return null;
}

/**
 * {frames, frameRate, width, height} of the first video track, or null when the file has no
 * readable `moov` or no video track. The rate is FFmpeg's avg_frame_rate for MOV: the time scale
 * over the one sample duration when `stts` has a single entry (or a single extra last sample),
 * otherwise frames x time scale / total duration.
 */
export async function mp4VideoInfo(blob) {
  const moov = await readMoov(blob);
  if (!moov) return null;
  for (const trak of children(moov, 0, moov.byteLength).filter((c) => c.type === "trak")) {
    const hdlr = find(moov, trak, ["mdia", "hdlr"]);
    if (!hdlr || boxType(moov, hdlr.start + 8) !== "vide") continue;
    const mdhd = find(moov, trak, ["mdia", "mdhd"]);
    const stts = find(moov, trak, ["mdia", "minf", "stbl", "stts"]);
    if (!mdhd || !stts) return null;
    const version = moov.getUint8(mdhd.start);
    const timescale = u32(moov, mdhd.start + (version === 1 ? 20 : 12));
    const count = u32(moov, stts.start + 4);
    if (timescale === 0 || stts.start + 8 + 8 * count > stts.end) return null;
    let frames = 0;
    let duration = 0;
    const entries = [];
    for (let i = 0; i < count; i++) {
      const n = u32(moov, stts.start + 8 + 8 * i);
      const delta = u32(moov, stts.start + 12 + 8 * i);
      entries.push([n, delta]);
      frames += n;
      duration += n * delta;
    }
    let frameRate = 0;
    if ((count === 1 || (count === 2 && entries[1][0] === 1)) && entries[0][1] > 0) {
      frameRate = timescale / entries[0][1];
    } else if (duration > 0) {
      frameRate = (frames * timescale) / duration;
    }
    const tkhd = find(moov, trak, ["tkhd"]);
    let width = 0;
    let height = 0;
    if (tkhd) {
      const v = moov.getUint8(tkhd.start);
      const at = tkhd.start + (v === 1 ? 88 : 76);
      if (at + 8 <= tkhd.end) {
        width = u32(moov, at) >>> 16;
        height = u32(moov, at + 4) >>> 16;
      }
    }
    return { frames, frameRate, width, height };
  }
  return null;
}
