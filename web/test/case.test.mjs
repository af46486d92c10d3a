// web/case.js against the Python vectors (specs/vectors/case/, written by
// specs/vectors/generate_protocol.py from crypto/case.py): the same recovery codes, seeds, keys
// and case ids, the same lenient parsing and the same group named for a typo.
// tests/web/test_web_case_bytes.py adds thousands of typo cases judged by crypto/case.py itself.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  CaseError,
  RecoveryCodeError,
  caseIdOf,
  caseSeed,
  deriveCase,
  encodeRecoveryCode,
  fromHex,
  newCaseSecret,
  parseCaseId,
  parseRecoveryCode,
  toHex,
} from "../case.js";
import { ed25519 } from "../vendor/@noble/curves/ed25519.js";

const vectors = (name) =>
  JSON.parse(readFileSync(new URL(`../../specs/vectors/case/${name}`, import.meta.url), "utf8")).cases;

for (const v of vectors("derive.json")) {
  test(`case/${v.id}: code, seed, key and id as crypto/case.py`, () => {
    const secret = fromHex(v.secret);
    assert.equal(encodeRecoveryCode(secret), v.recovery_code);
    assert.equal(toHex(caseSeed(secret)), v.signing_seed);
    const c = deriveCase(secret);
    assert.equal(toHex(c.publicKey), v.public_key);
    assert.equal(c.caseId, v.case_id);
    assert.equal(caseIdOf(c.publicKey), v.case_id);
    assert.deepEqual(parseRecoveryCode(v.recovery_code), secret);
    const message = new TextEncoder().encode("a message");
    assert.ok(ed25519.verify(c.sign(message), message, c.publicKey));
  });
}

for (const v of vectors("recovery_code.json")) {
  test(`case/${v.id}`, () => {
    if (v.error) {
      assert.throws(
        () => parseRecoveryCode(v.code),
        (err) => err instanceof RecoveryCodeError && err.group === v.group && typeof err.code === "string",
      );
    } else {
      assert.equal(toHex(parseRecoveryCode(v.code)), v.secret);
    }
  });
}

for (const v of vectors("case_id.json")) {
  test(`case/${v.id}`, () => {
    if (v.error) assert.throws(() => parseCaseId(v.text), CaseError);
    else assert.equal(parseCaseId(v.text), v.case_id);
  });
}

test("error codes say what kind of mistake it is, and messages never repeat the input", () => {
  const code = "3BX4-NCF3-JY1N-ZX9P-74Z0-52KW-423G";
  const cases = [
    ["", "empty"],
    [" - ", "empty"],
    [code.slice(0, -1), "length"],
    [code + "0", "length"],
    ["x".repeat(201), "length"],
    ["3BX4-NCF3-JU1N-ZX9P-74Z0-52KW-423G", "character"],
    ["3BX4-NKF3-JY1N-ZX9P-74Z0-52KW-423G", "check"],
    ["80000000000000000000000000B3", "check"],
  ];
  for (const [text, want] of cases) {
    try {
      parseRecoveryCode(text);
      assert.fail("no error");
    } catch (err) {
      assert.ok(err instanceof RecoveryCodeError);
      assert.equal(err.code, want, text);
      for (const group of code.split("-")) assert.ok(!err.message.includes(group));
    }
  }
  assert.throws(() => parseRecoveryCode(null), (e) => e.code === "empty");
});

test("200 characters are read, 201 are refused (counted as Python counts: code points)", () => {
  const code = "3BX4-NCF3-JY1N-ZX9P-74Z0-52KW-423G";
  assert.equal(toHex(parseRecoveryCode(code + " ".repeat(200 - code.length))), "6be92ac78e5e0d7fd4d8e4f80a29f082");
  assert.throws(() => parseRecoveryCode(code + " ".repeat(201 - code.length)), (e) => e.code === "length");
});

test("new secrets are 16 random bytes and round-trip through their code", () => {
  const seen = new Set();
  for (let i = 0; i < 200; i++) {
    const secret = newCaseSecret();
    assert.equal(secret.length, 16);
    seen.add(toHex(secret));
    const code = encodeRecoveryCode(secret);
    assert.match(code, /^[0-7][0-9A-HJKMNP-TV-Z]{3}(-[0-9A-HJKMNP-TV-Z]{4}){6}$/);
    assert.deepEqual(parseRecoveryCode(code.toLowerCase().replaceAll("-", " ")), secret);
  }
  assert.equal(seen.size, 200);
});

test("every single substitution is caught and located, on random codes", () => {
  const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
  for (let n = 0; n < 20; n++) {
    const plain = encodeRecoveryCode(newCaseSecret()).replaceAll("-", "");
    for (let i = 0; i < plain.length; i++) {
      for (const c of alphabet) {
        if (c === plain[i]) continue;
        const typo = plain.slice(0, i) + c + plain.slice(i + 1);
        assert.throws(
          () => parseRecoveryCode(typo),
          (e) => e instanceof RecoveryCodeError && e.group === Math.floor(i / 4) + 1,
        );
      }
    }
  }
});

test("bad secrets and keys are refused with typed errors", () => {
  assert.throws(() => encodeRecoveryCode(new Uint8Array(15)), (e) => e instanceof CaseError && e.code === "secret");
  assert.throws(() => deriveCase([1, 2, 3]), (e) => e instanceof CaseError && e.code === "secret");
  assert.throws(() => caseIdOf(new Uint8Array(31)), (e) => e instanceof CaseError && e.code === "public_key");
  assert.equal(fromHex("ABCD"), null);
  assert.equal(fromHex("abc"), null);
});
