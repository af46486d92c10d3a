// Step 3: choose photos and videos (picker, drag and drop, a folder where the browser can),
// see each one small (blurred until the person asks), and what became of it: ready, exact
// copies only (and why), or cannot read (why, and what to do). Then the confirmation of exactly
// what will be sent: counts of fingerprints, never a picture, a name or a size.
import { fingerprint } from "../fingerprint.js";
import { isHeif, sniffHead, SNIFF_BYTES } from "../kinds.js";
import { formatBytes, t } from "../i18n.js";
import { announce, button, h, para, screen } from "./dom.js";
import { prepText } from "./send.js";

/** Most files in one visit: more is better sent in several rounds (and keeps memory bounded). */
export const MAX_FILES = 500;
const MEDIA_NAME = /\.(jpe?g|png|gif|webp|bmp|tiff?|heic|heif|avif|mp4|m4v|mov|3gp|webm|mkv|avi)$/i;

let nextId = 1;
let queueRunning = false;

function isMedia(file) {
  return file.type.startsWith("image/") || file.type.startsWith("video/") || MEDIA_NAME.test(file.name);
}

/** Adds chosen files to the list (a folder's non-media files and hidden files left out). */
export function addFiles(ctx, files, { fromFolder = false } = {}) {
  const state = ctx.state;
  let added = 0;
  let skipped = 0;
  for (const file of files) {
    if (fromFolder && (file.name.startsWith(".") || !isMedia(file))) { skipped += 1; continue; }
    const same = state.files.some((f) => f.file.name === file.name && f.file.size === file.size && f.file.lastModified === file.lastModified);
    if (same) { skipped += 1; continue; }
    if (state.files.length >= MAX_FILES) { announce(t("files.tooMany", { count: MAX_FILES })); break; }
    const looksVideo = file.type.startsWith("video/");
    state.files.push({
      id: nextId++, file, name: file.name, size: file.size, status: "waiting", progress: 0,
      kind: looksVideo ? "video" : "image", thumb: URL.createObjectURL(file), records: null, hashes: [], reason: null,
    });
    added += 1;
  }
  announce(t("files.added", { count: added }) + (skipped ? " " + t("files.skipped", { count: skipped }) : ""));
  ctx.render();
  runQueue(ctx);
}

/** What fingerprint() gave, as the person's outcomes, decided as the Python client decides
 * (submission.js fileReport, client/plan.py): "ready", "exact" (a video this browser cannot
 * decode: its exact fingerprints only), "low" (too flat: nothing sent), "skipped" (not a
 * picture or video: nothing sent). `records` are what goes to the hub client for a sent file. */
export function classify(result, submission) {
  const report = submission.fileReport(result.records);
  const kind = report.kind === "image" || report.kind === "video" ? report.kind : "file";
  if (report.state === submission.READY) {
    const perceptual = report.algorithms.includes("pdq") || report.algorithms.includes("vpdq");
    return { kind, status: perceptual ? "ready" : "exact", reason: perceptual ? null : "video-decode",
      records: result.records, hashes: report.hashes };
  }
  const low = report.state === submission.LOW_QUALITY;
  return { kind, status: low ? "low" : "skipped", reason: low ? (kind === "video" ? "flat-video" : "flat-picture") : "not-media",
    records: null, hashes: [] };
}

/** The reason a file cannot be read, from the error's stable code and the file's first bytes. */
export async function reasonOf(err, file) {
  if (file.size === 0) return "empty";
  if (err?.code === "too-large") return "too-large";
  if (err?.code === "unreadable-media") return "damaged";
  if (err?.code === "unsupported-media") {
    const head = new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer());
    if (isHeif(head)) return "heic";
    const sniffed = sniffHead(head);
    if (sniffed.format === "tiff") return "tiff";
    return sniffed.kind === "video" ? "video-format" : "image-format";
  }
  return "failed";
}

async function runQueue(ctx) {
  if (queueRunning) return;
  queueRunning = true;
  try {
    for (;;) {
      const item = ctx.state.files.find((f) => f.status === "waiting");
      if (!item) break;
      item.status = "working";
      updateItem(ctx, item);
      try {
        const result = await fingerprint(item.file, {
          onProgress: ({ done, total }) => {
            item.progress = total ? done / total : 0;
            updateItem(ctx, item, { progressOnly: true });
          },
        });
        const { submission } = await ctx.modules("submission");
        Object.assign(item, classify(result, submission));
      } catch (err) {
        item.status = "error";
        item.records = null;
        item.hashes = [];
        item.reason = await reasonOf(err, item.file);
      }
      if (!ctx.state.files.includes(item)) continue; // removed meanwhile
      updateItem(ctx, item);
      announce(`${item.name}: ${statusText(item)}`);
    }
  } finally {
    queueRunning = false;
  }
  updateSummary(ctx);
  if (ctx.state.files.length && ctx.state.step === "files") announce(t("files.allDone"));
}

export function statusText(item) {
  if (item.status === "waiting") return t("file.waiting");
  if (item.status === "working") return t("file.working");
  if (item.status === "ready") return t("file.ready");
  if (item.status === "exact") return t("file.exact");
  if (item.status === "low") return t("file.low");
  if (item.status === "skipped") return t("file.skipped");
  return t("file.error");
}

function thumbnail(ctx, item) {
  const cls = `thumb${ctx.state.showPreviews ? "" : " blurred"}`;
  if (!item.thumb) return h("span", { class: `${cls} placeholder`, "aria-hidden": "true" });
  if (item.kind === "video") {
    return h("video", { class: cls, src: item.thumb, muted: "", preload: "metadata", "aria-hidden": "true", tabindex: "-1" });
  }
  const img = h("img", { class: cls, src: item.thumb, alt: "", decoding: "async", loading: "lazy" });
  img.addEventListener("error", () => img.replaceWith(h("span", { class: `${cls} placeholder`, "aria-hidden": "true" })));
  return img;
}

function itemDetails(item) {
  const parts = [];
  if (item.status === "working") {
    parts.push(h("progress", { max: "100", value: String(Math.round(item.progress * 100)), "aria-label": t("file.working") }));
  }
  if (item.reason) {
    parts.push(h("p", { class: "why" }, t(`why.${item.reason}`)));
    parts.push(h("p", { class: "todo" }, t(`todo.${item.reason}`)));
  }
  return parts;
}

function fileItem(ctx, item) {
  return h("li", { class: "file", testid: "file-item", "data-file-id": String(item.id), "data-state": item.status },
    thumbnail(ctx, item),
    h("div", { class: "file-text" },
      h("p", { class: "file-name" }, h("bdi", {}, item.name), h("span", { class: "file-size" }, ` · ${formatBytes(item.size)}`)),
      h("p", { class: `file-status status-${item.status}`, testid: "file-status" }, statusText(item)),
      h("div", { class: "file-details" }, itemDetails(item))),
    button(t("file.remove"), () => removeItem(ctx, item), { testid: "file-remove", "aria-label": t("file.remove.label", { name: item.name }) }));
}

function removeItem(ctx, item) {
  const index = ctx.state.files.indexOf(item);
  if (index < 0) return;
  ctx.state.files.splice(index, 1);
  if (item.thumb) URL.revokeObjectURL(item.thumb);
  ctx.render();
  announce(t("file.removed", { name: item.name }));
  const next = document.querySelectorAll('[data-testid="file-remove"]')[index] ?? document.querySelector('[data-testid="pick-files"]');
  next?.focus();
}

function updateItem(ctx, item, { progressOnly = false } = {}) {
  const li = document.querySelector(`[data-file-id="${item.id}"]`);
  if (!li) return;
  if (progressOnly) {
    const bar = li.querySelector("progress");
    if (bar) bar.value = Math.round(item.progress * 100);
    return;
  }
  li.dataset.state = item.status;
  const status = li.querySelector(".file-status");
  status.className = `file-status status-${item.status}`;
  status.textContent = statusText(item);
  li.querySelector(".file-details").replaceChildren(...itemDetails(item));
  updateSummary(ctx);
}

function counts(files) {
  const c = { total: files.length, done: 0 };
  for (const f of files) if (f.status !== "waiting" && f.status !== "working") c.done += 1;
  return c;
}

function updateSummary(ctx) {
  const summary = document.querySelector('[data-testid="files-summary"]');
  if (!summary) return;
  summary.replaceChildren(...summaryContent(ctx));
  const next = document.querySelector('[data-testid="files-continue"]');
  if (next) next.disabled = !canContinue(ctx.state.files);
}

function summaryContent(ctx) {
  const c = counts(ctx.state.files);
  if (!c.total) return [t("files.none")];
  return [
    h("progress", { max: String(c.total), value: String(c.done), "aria-label": t("files.progress.label") }),
    " ",
    t("files.progress", { done: c.done, count: c.total }),
  ];
}

function canContinue(files) {
  return files.length > 0 && files.every((f) => f.status !== "waiting" && f.status !== "working") && files.some((f) => f.records);
}

/** Every file in a dropped folder (webkitGetAsEntry), read to the end of each directory. */
async function filesOfEntry(entry, out, depth = 0) {
  if (out.length >= MAX_FILES || depth > 8) return;
  if (entry.isFile) {
    out.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    return;
  }
  if (!entry.isDirectory) return;
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) break;
    for (const child of batch) await filesOfEntry(child, out, depth + 1);
  }
}

async function dropped(ctx, event) {
  const items = [...(event.dataTransfer?.items ?? [])];
  const entries = items.map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.some((e) => e.isDirectory)) {
    const out = [];
    for (const entry of entries) await filesOfEntry(entry, out).catch(() => {});
    addFiles(ctx, out, { fromFolder: true });
  } else {
    addFiles(ctx, [...(event.dataTransfer?.files ?? [])]);
  }
}

export function filesScreen(ctx) {
  const state = ctx.state;
  const input = h("input", { type: "file", multiple: true, class: "visually-hidden", tabindex: "-1", "aria-hidden": "true",
    accept: "image/*,video/*,.heic,.heif", testid: "file-input" });
  input.addEventListener("change", () => { addFiles(ctx, [...input.files]); input.value = ""; });
  const folderInput = h("input", { type: "file", multiple: true, class: "visually-hidden", tabindex: "-1", "aria-hidden": "true", testid: "folder-input" });
  const folders = "webkitdirectory" in folderInput;
  if (folders) folderInput.webkitdirectory = true;
  folderInput.addEventListener("change", () => { addFiles(ctx, [...folderInput.files], { fromFolder: true }); folderInput.value = ""; });

  const zone = h("div", { class: "drop-zone", testid: "drop-zone" },
    h("p", {}, t("files.drop")),
    h("div", { class: "actions" },
      button(t("files.pick"), () => input.click(), { testid: "pick-files", kind: "primary" }),
      folders ? button(t("files.pickFolder"), () => folderInput.click(), { testid: "pick-folder" }) : null),
    input, folderInput);
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("dragging"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (event) => { event.preventDefault(); zone.classList.remove("dragging"); dropped(ctx, event); });

  const toggle = h("label", { class: "choice toggle" },
    h("input", { type: "checkbox", testid: "toggle-previews", checked: state.showPreviews,
      onchange: (event) => {
        state.showPreviews = event.target.checked;
        for (const el of document.querySelectorAll(".thumb")) el.classList.toggle("blurred", !state.showPreviews);
      } }),
    h("span", {}, t("files.showPreviews")));

  const prep = state.prep && !state.sent.length
    ? h("p", { class: "prep", testid: "case-prep", "data-state": state.prep.state, role: "status" },
      h("span", {}, prepText(state.prep)), " ",
      h("progress", { max: "100", value: String(Math.round(100 * (state.prep.progress ?? 0))), hidden: state.prep.state !== "working",
        "aria-label": t("prep.working") }))
    : null;
  return screen("files", t("files.title"),
    prep,
    para(t("files.intro")),
    para(t("files.private"), { class: "reassure" }),
    zone,
    state.files.length ? toggle : null,
    h("p", { class: "summary", testid: "files-summary", role: "status" }, summaryContent(ctx)),
    h("ul", { class: "file-list", testid: "file-list", "aria-label": t("files.list.label") }, state.files.map((item) => fileItem(ctx, item))),
    h("div", { class: "actions" },
      button(t("common.continue"), () => toConfirm(ctx), { testid: "files-continue", kind: "primary", disabled: !canContinue(state.files) }),
      state.sent.length ? button(t("files.backToCase"), () => ctx.go("case"), { testid: "files-back-case" }) : null));
}

/** The hub hash objects to send, each once (two copies of one file give the same fingerprints,
 * and the hub refuses a duplicate in one request), and for each the files it came from. */
export function plan(files, submission) {
  const { hashes } = submission.planSubmission(files.map((f) => f.records));
  const owners = hashes.map(() => []);
  const index = new Map(hashes.map((h, i) => [submission.canonicalHashKey(h), i]));
  for (const item of files) {
    for (const h of item.hashes) owners[index.get(submission.canonicalHashKey(h))]?.push(item.id);
  }
  return { hashes, owners };
}

export function confirmScreen(ctx) {
  const files = ctx.state.files.filter((f) => f.records);
  const unsent = ctx.state.files.filter((f) => !f.records);
  const hashes = ctx.state.plan?.hashes ?? [];
  const by = (alg) => hashes.filter((x) => x.algorithm === alg).length;
  const photos = files.filter((f) => f.kind === "image").length;
  const videos = files.filter((f) => f.kind === "video").length;
  const lines = [];
  if (photos) lines.push(t("confirm.photos", { count: photos }));
  if (videos) lines.push(t("confirm.videos", { count: videos }));
  const fps = [];
  if (by("pdq")) fps.push(t("confirm.fp.pdq", { count: by("pdq") }));
  if (by("vpdq")) fps.push(t("confirm.fp.vpdq", { count: by("vpdq") }));
  fps.push(t("confirm.fp.exact", { count: by("md5") + by("sha256") }));
  return screen("confirm", t("confirm.title"),
    para(t("confirm.intro")),
    h("div", { class: "panel", testid: "confirm-summary", "data-hashes": String(hashes.length) },
      h("p", {}, t("confirm.from")), h("ul", {}, lines.map((l) => h("li", {}, l))),
      h("p", {}, t("confirm.total", { count: hashes.length })), h("ul", { testid: "confirm-fingerprints" }, fps.map((l) => h("li", {}, l)))),
    unsent.length ? para(t("confirm.unread", { count: unsent.length }), { class: "note", testid: "confirm-unsent" }) : null,
    h("div", { class: "panel not-sent" }, h("p", {}, t("confirm.notSent")),
      h("ul", {}, h("li", {}, t("confirm.notSent.pictures")), h("li", {}, t("confirm.notSent.names")), h("li", {}, t("confirm.notSent.you")))),
    para(t("confirm.partners")),
    h("div", { class: "actions" },
      button(t("confirm.send"), () => ctx.startSending(), { testid: "send", kind: "primary" }),
      button(t("common.back"), () => ctx.go("files"), { testid: "confirm-back" })));
}

/** Computes what will be sent, then shows it. */
export async function toConfirm(ctx) {
  const { submission } = await ctx.modules("submission");
  const files = ctx.state.files.filter((f) => f.records);
  ctx.state.plan = { files, ...plan(files, submission) };
  ctx.go("confirm");
}
