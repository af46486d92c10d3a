// Refresh web/vendor/ from node_modules after `npm ci` (pinned by package-lock.json).
//
// Why vendored: the page must never load code from a CDN at run time, and the exact bytes
// that run in a person's browser must be reviewable in this repository. Only the ES module
// files the page imports are copied, with the package's LICENSE and a VERSIONS.json stating
// name, version and the lock file's integrity hash for each package.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(web, "vendor");

// package -> the files the page imports; the files those import (relative or through another
// vendored package) are added by following their import statements.
const PACKAGES = {
  "@noble/hashes": [
    "_md.js", "_u64.js", "hkdf.js", "hmac.js", "legacy.js", "pbkdf2.js", "scrypt.js", "sha2.js",
    "utils.js", "LICENSE",
  ],
  "@noble/curves": ["ed25519.js", "LICENSE"],
};

// A browser without an import map cannot resolve a bare specifier such as
// "@noble/hashes/sha2.js", so imports of another vendored package are rewritten to the
// relative path of its vendored copy ("../hashes/sha2.js"). This is the only change made
// to a vendored file, and it is made here so that it can be reviewed and repeated.
const IMPORT = /((?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*|(?:^|\n)\s*import\s*)(["'])([^"']+)\2/g;

function resolveImports(name, file, text) {
  const found = [];
  const rewritten = text.replace(IMPORT, (whole, head, quote, spec) => {
    if (spec.startsWith("./") || spec.startsWith("../")) {
      found.push([name, join(dirname(file), spec)]);
      return whole;
    }
    const pkg = Object.keys(PACKAGES).find((p) => spec.startsWith(p + "/"));
    if (!pkg) throw new Error(`${name}/${file} imports ${spec}, which is not vendored`);
    const inner = spec.slice(pkg.length + 1);
    found.push([pkg, inner]);
    const depth = name.split("/").length + dirname(file).split("/").filter((s) => s && s !== ".").length;
    return `${head}${quote}${"../".repeat(depth)}${pkg}/${inner}${quote}`;
  });
  return { rewritten, found };
}

const lock = JSON.parse(readFileSync(join(web, "package-lock.json"), "utf8"));
rmSync(vendor, { recursive: true, force: true });
const versions = {};
for (const name of Object.keys(PACKAGES)) {
  const source = join(web, "node_modules", name);
  const meta = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));
  const locked = lock.packages[`node_modules/${name}`];
  if (!locked || locked.version !== meta.version) {
    throw new Error(`${name}: node_modules does not match package-lock.json; run npm ci first`);
  }
  versions[name] = { version: meta.version, license: meta.license, integrity: locked.integrity };
}
const todo = Object.entries(PACKAGES).flatMap(([name, files]) => files.map((f) => [name, f]));
const done = new Set();
while (todo.length) {
  const [name, file] = todo.pop();
  const key = `${name}/${file}`;
  if (done.has(key)) continue;
  done.add(key);
  const from = join(web, "node_modules", name, file);
  const to = join(vendor, name, file);
  mkdirSync(dirname(to), { recursive: true });
  if (!file.endsWith(".js")) {
    copyFileSync(from, to);
    continue;
  }
  const { rewritten, found } = resolveImports(name, file, readFileSync(from, "utf8"));
  writeFileSync(to, rewritten);
  todo.push(...found);
}
writeFileSync(join(vendor, "VERSIONS.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`vendored ${Object.keys(versions).length} package(s) into ${vendor}`);
