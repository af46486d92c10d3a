// The demo page: fingerprints the chosen files one by one and shows the JSON records.
import { fingerprint } from "./fingerprint.js";

const input = document.getElementById("files");
const out = document.getElementById("out");
const progressList = document.getElementById("progress");

input.addEventListener("change", async () => {
  out.textContent = "";
  progressList.textContent = "";
  for (const file of input.files) {
    const item = document.createElement("li");
    item.textContent = `${file.name}: waiting`;
    progressList.append(item);
    try {
      const { records, notes } = await fingerprint(file, {
        onProgress: ({ phase, done, total }) => {
          item.textContent = `${file.name}: ${phase} ${Math.round((100 * done) / Math.max(1, total))}%`;
        },
      });
      item.textContent = `${file.name}: done` + (notes.length ? ` (${notes.join(" ")})` : "");
      for (const r of records) out.textContent += JSON.stringify(r) + "\n";
    } catch (err) {
      item.textContent = `${file.name}: ${err.message} [${err.code ?? "error"}]`;
    }
  }
  document.body.dataset.done = "1";
});
