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

// package -> files the page needs (each file's own relative imports included).
const PACKAGES = {
  "@noble/hashes": [
    "_md.js", "_u64.js", "hmac.js", "legacy.js", "pbkdf2.js", "scrypt.js", "sha2.js", "utils.js",
    "LICENSE",
  ],
};

const lock = JSON.parse(readFileSync(join(web, "package-lock.json"), "utf8"));
rmSync(vendor, { recursive: true, force: true });
const versions = {};
for (const [name, files] of Object.entries(PACKAGES)) {
  const source = join(web, "node_modules", name);
  const meta = JSON.parse(readFileSync(join(source, "package.json"), "utf8"));
  const locked = lock.packages[`node_modules/${name}`];
  if (!locked || locked.version !== meta.version) {
    throw new Error(`${name}: node_modules does not match package-lock.json; run npm ci first`);
  }
  const target = join(vendor, name);
  mkdirSync(target, { recursive: true });
  for (const file of files) copyFileSync(join(source, file), join(target, file));
  versions[name] = { version: meta.version, license: meta.license, integrity: locked.integrity };
}
writeFileSync(join(vendor, "VERSIONS.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`vendored ${Object.keys(versions).length} package(s) into ${vendor}`);
