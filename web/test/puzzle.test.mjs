// web/puzzle.js against the Python vectors (specs/vectors/case-puzzle/, written by
// specs/vectors/generate_case_puzzle.py): the same input bytes, scrypt output, first nonce and
// header value as crypto/puzzle.py. Run by `node --test` (tests/web/test_web_fingerprint.py).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  PuzzleError,
  encodeSolution,
  fromHex,
  meets,
  parseChallenge,
  puzzleInput,
  solve,
  work,
} from "../puzzle.js";

const vectors = (name) =>
  JSON.parse(
    readFileSync(new URL(`../../specs/vectors/case-puzzle/${name}`, import.meta.url), "utf8"),
  ).cases;

for (const v of vectors("verify.json").filter((c) => "nonce" in c)) {
  test(`case-puzzle/${v.id}: same bytes, output and first nonce as Python`, async () => {
    const challenge = parseChallenge(fromHex(v.challenge));
    const key = fromHex(v.public_key);
    assert.equal(Buffer.from(puzzleInput(challenge, key, v.nonce)).toString("hex"), v.input);
    const output = work(challenge, key, v.nonce);
    assert.equal(Buffer.from(output).toString("hex"), v.output);
    assert.ok(meets(output, challenge.difficulty));
    const seen = [];
    const nonce = await solve(challenge, key, { onProgress: (p) => seen.push(p.done) });
    assert.equal(nonce, v.nonce);
    assert.equal(seen.length, v.nonce + 1);
    assert.equal(encodeSolution(challenge, nonce), v.header);
  });
}

for (const v of vectors("challenge.json")) {
  test(`case-puzzle/${v.id}`, () => {
    if (v.error) {
      assert.throws(() => parseChallenge(fromHex(v.bytes)), PuzzleError);
    } else {
      const c = parseChallenge(fromHex(v.challenge));
      assert.deepEqual([c.difficulty, c.log2N, c.r, c.p], [6, 10, 8, 1]);
      assert.equal(c.epoch, BigInt(v.epoch));
    }
  });
}

test("a wrong nonce does not meet the difficulty", () => {
  const v = vectors("verify.json").find((c) => c.id === "verify/bad/nonce");
  const [challengeHex, nonceHex] = v.header.split(".");
  const challenge = parseChallenge(fromHex(challengeHex));
  const output = work(challenge, fromHex(v.public_key), parseInt(nonceHex, 16));
  assert.equal(meets(output, challenge.difficulty), false);
});

test("solving stops when the signal aborts", async () => {
  const v = vectors("challenge.json").find((c) => c.id === "challenge/issue");
  const bytes = fromHex(v.challenge);
  bytes[9] = 30; // unsolvable in a test's time; the MAC no longer matters here
  const controller = new AbortController();
  const solving = solve(parseChallenge(bytes), new Uint8Array(32), {
    sliceMs: 0,
    onProgress: ({ done }) => {
      if (done === 2) controller.abort();
    },
    signal: controller.signal,
  });
  await assert.rejects(solving, (e) => e instanceof PuzzleError && e.code === "cancelled");
});
