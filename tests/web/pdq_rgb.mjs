// Hash raw RGB files with web/pdq.js: reads a JSON manifest [{path, width, height}] from argv[2]
// and prints one JSON line per entry {hash, quality}. Used by tests/web/test_web_pdq.py.
import { readFileSync } from "node:fs";
import { pdqFromRGB } from "../../web/pdq.js";

const manifest = JSON.parse(readFileSync(process.argv[2], "utf8"));
for (const { path, width, height } of manifest) {
  const rgb = new Uint8Array(readFileSync(path));
  process.stdout.write(JSON.stringify(pdqFromRGB(rgb, width, height)) + "\n");
}
