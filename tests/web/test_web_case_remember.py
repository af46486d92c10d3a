"""web/remember.js in Debian's Chromium: "remember on this device" keeps a case's state in
IndexedDB encrypted under a key derived from the case secret (issue 15).

remember, then recall with the right secret gives the state back; another case's secret gives
null; forget() deletes everything. What IndexedDB holds is read back from the page and the
profile's files are read from disk: neither holds the case id, a hash, an entry id, a file
name or the recovery code in the clear (a plain control record proves the disk search finds
plaintext when there is some).
"""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, sync_playwright

from crypto.case import CaseSecret

sys.path.insert(0, str(Path(__file__).resolve().parent))

from webkit import CHROMIUM, CHROMIUM_ARGS, serve

FILE_NAME = "Holiday-beach-0042.jpg"
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
ENTRY = "3c1f0e5a9b7d4c2e8f6a1b3d5c7e9f01"
CONTROL = "PLAIN-CONTROL-MARKER-7d41"


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[tuple[Page, BrowserContext, Path]]:
    files = tmp_path / "files"
    files.mkdir()
    (files / "blank.html").write_text("<!doctype html><title>blank</title>")
    profile = tmp_path / "profile"
    with serve(files) as base, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base}/files/blank.html")
        yield page, context, profile
        context.close()


def _call(page: Page, script: str, *args: Any) -> Any:
    """Run ``script`` (the body of an async function of ``m`` = remember.js, ``args``)."""
    return page.evaluate(
        f"""async (args) => {{
            const m = await import("/remember.js");
            const {{ fromHex, toHex }} = await import("/case.js");
            try {{ return await (async (args) => {{ {script} }})(args); }}
            catch (e) {{ return {{ thrown: e.name, code: e.code }}; }}
        }}""",
        list(args),
    )


def _dump_indexeddb(page: Page) -> str:
    """Every database, store and record as text (bytes as hex), as a person with the device
    could read them with the browser's developer tools."""
    text: str = page.evaluate(
        """async () => {
            const hex = (b) => Array.from(new Uint8Array(b.buffer ?? b, b.byteOffset ?? 0,
                b.byteLength), (x) => x.toString(16).padStart(2, "0")).join("");
            const out = [];
            for (const { name } of await indexedDB.databases()) {
                const db = await new Promise((ok) => { const r = indexedDB.open(name);
                    r.onsuccess = () => ok(r.result); });
                out.push("db " + name);
                for (const store of db.objectStoreNames) {
                    const all = await new Promise((ok) => { const r = db.transaction(store)
                        .objectStore(store).getAll(); r.onsuccess = () => ok(r.result); });
                    out.push("store " + store + " " + JSON.stringify(all, (k, v) =>
                        v instanceof Uint8Array || v instanceof ArrayBuffer ? "hex:" + hex(v) : v));
                    // the raw ciphertext bytes as text too, in case they spell something
                    for (const r of all) for (const v of Object.values(r)) if (v instanceof
                        Uint8Array) out.push(new TextDecoder("latin1").decode(v));
                }
                db.close();
            }
            return out.join("\\n");
        }"""
    )
    return text


def _secrets_of(secret: CaseSecret) -> list[str]:
    """Every spelling of something identifying this test's case and files."""
    raw = secret.to_bytes()
    code = secret.recovery_code()
    return [
        secret.case_id(),
        secret.case_id().lower(),
        code,
        code.replace("-", ""),
        raw.hex(),
        base64.b64encode(raw).decode(),
        secret.public_key().hex(),
        FILE_NAME,
        PDQ,
        PDQ[:16],
        ENTRY,
    ]


def _state(secret: CaseSecret) -> dict[str, Any]:
    return {
        "case_id": secret.case_id(),
        "files": {FILE_NAME: {"entries": [ENTRY], "pdq": PDQ}},
        "receipts": [{"entry_id": ENTRY, "leaf_hash": PDQ}],
    }


def test_remember_recall_forget(browser_page: tuple[Page, BrowserContext, Path]) -> None:
    page, _, _ = browser_page
    mine, other = CaseSecret.generate(), CaseSecret.generate()
    a, b = mine.to_bytes().hex(), other.to_bytes().hex()
    assert _call(page, "return await m.hasRemembered();") is False
    assert _call(page, "return await m.recall(fromHex(args[0]));", a) is None
    state = _state(mine)
    _call(
        page,
        "const pending = [new Uint8Array([78, 67, 69, 86])];"
        "await m.remember(fromHex(args[0]), {...args[1], pending});",
        a,
        state,
    )
    assert _call(page, "return await m.hasRemembered();") is True
    back = _call(
        page,
        "const s = await m.recall(fromHex(args[0])); "
        "return {...s, pending: s.pending.map((p) => [p instanceof Uint8Array, toHex(p)])};",
        a,
    )
    assert back == {**state, "pending": [[True, "4e434556"]]}
    assert _call(page, "return await m.recall(fromHex(args[0]));", b) is None
    # A second case remembered on the same device keeps its own record.
    _call(page, "await m.remember(fromHex(args[0]), {n: 2});", b)
    assert _call(page, "return await m.recall(fromHex(args[0]));", b) == {"n": 2}
    assert _call(page, "return (await m.recall(fromHex(args[0]))).files;", a) == state["files"]
    # Remembering again replaces the state.
    _call(page, "await m.remember(fromHex(args[0]), {n: 3});", a)
    assert _call(page, "return await m.recall(fromHex(args[0]));", a) == {"n": 3}
    # forget: everything, in one call.
    _call(page, "await m.forget();")
    assert _call(page, "return await m.hasRemembered();") is False
    assert _call(page, "return (await indexedDB.databases()).length;") == 0
    assert _call(page, "return await m.recall(fromHex(args[0]));", a) is None


def test_a_changed_record_is_reported_not_returned(
    browser_page: tuple[Page, BrowserContext, Path],
) -> None:
    page, _, _ = browser_page
    secret = CaseSecret.generate().to_bytes().hex()
    _call(page, "await m.remember(fromHex(args[0]), {n: 1});", secret)
    changed = _call(
        page,
        """const db = await new Promise((ok) => { const r = indexedDB.open(m.DB_NAME);
               r.onsuccess = () => ok(r.result); });
           const store = db.transaction("states", "readwrite").objectStore("states");
           const all = await new Promise((ok) => { const r = store.getAll();
               r.onsuccess = () => ok(r.result); });
           all[0].data[5] ^= 1;
           await new Promise((ok) => { const r = db.transaction("states", "readwrite")
               .objectStore("states").put(all[0]); r.onsuccess = ok; });
           db.close();
           return await m.recall(fromHex(args[0]));""",
        secret,
    )
    assert changed == {"thrown": "RememberError", "code": "damaged"}


def test_nothing_identifying_is_stored_in_the_clear(
    browser_page: tuple[Page, BrowserContext, Path],
) -> None:
    page, context, profile = browser_page
    secret = CaseSecret.generate()
    state = {**_state(secret), "pending": [secret.public_key().hex()] * 3}
    _call(page, "await m.remember(fromHex(args[0]), args[1]);", secret.to_bytes().hex(), state)
    # Control: a plain record written the ordinary way, to prove plaintext would be found.
    _call(
        page,
        """await new Promise((ok) => { const r = indexedDB.open("control");
               r.onupgradeneeded = () => r.result.createObjectStore("s");
               r.onsuccess = () => { const tx = r.result.transaction("s", "readwrite");
                   tx.objectStore("s").put(args[0], "k"); tx.oncomplete = () => {
                   r.result.close(); ok(); }; }; });""",
        CONTROL,
    )
    dump = _dump_indexeddb(page)
    assert CONTROL in dump and "db ncii-remember" in dump
    for needle in _secrets_of(secret):
        assert needle not in dump, "found in IndexedDB in the clear"
    assert "store states" in dump and "hex:" in dump  # the ciphertext is there
    # The plaintext is padded: one small state takes a whole 4 KiB block (+ 16 bytes of tag).
    sizes = _call(
        page,
        """const db = await new Promise((ok) => { const r = indexedDB.open(m.DB_NAME);
               r.onsuccess = () => ok(r.result); });
           const all = await new Promise((ok) => { const r = db.transaction("states")
               .objectStore("states").getAll(); r.onsuccess = () => ok(r.result); });
           db.close();
           return all.map((r) => [Object.keys(r).sort(), r.data.length, r.iv.length]);""",
    )
    assert sizes == [[["data", "id", "iv", "v"], 4096 + 16, 12]]
    # And on disk: the browser profile's files, as someone holding the device could read them.
    context.close()
    blobs = b"".join(p.read_bytes() for p in profile.rglob("*") if p.is_file())
    assert CONTROL.encode() in blobs or CONTROL.encode("utf-16-le") in blobs
    for needle in _secrets_of(secret):
        for form in (needle.encode(), needle.encode("utf-16-le")):
            assert form not in blobs, "found on disk in the clear"


def test_the_record_is_what_specs_case_keys_md_says(
    browser_page: tuple[Page, BrowserContext, Path],
) -> None:
    """Decrypting the stored record in Python, from the labels in specs/case-keys.md section 4,
    gives the state back: the spec describes the store exactly."""
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    page, _, _ = browser_page
    secret = CaseSecret.generate()
    state = _state(secret)
    _call(page, "await m.remember(fromHex(args[0]), args[1]);", secret.to_bytes().hex(), state)
    (record,) = _call(
        page,
        """const db = await new Promise((ok) => { const r = indexedDB.open(m.DB_NAME);
               r.onsuccess = () => ok(r.result); });
           const all = await new Promise((ok) => { const r = db.transaction("states")
               .objectStore("states").getAll(); r.onsuccess = () => ok(r.result); });
           db.close();
           return all.map((r) => ({id: r.id, v: r.v, iv: toHex(r.iv), data: toHex(r.data)}));""",
    )

    def hkdf(info: bytes, length: int) -> bytes:
        salt = b"ncii-exchange/remember/v1"
        return HKDF(hashes.SHA256(), length, salt, info).derive(secret.to_bytes())

    record_id = hkdf(b"ncii-exchange/remember-id/v1", 16).hex()
    assert record["id"] == record_id and record["v"] == 1
    key = hkdf(b"ncii-exchange/remember-key/v1", 32)
    plain = AESGCM(key).decrypt(
        bytes.fromhex(record["iv"]),
        bytes.fromhex(record["data"]),
        b"ncii-remember/v1/" + record_id.encode(),
    )
    assert len(plain) % 4096 == 0 and plain.rstrip(b" ") == plain.rstrip()
    assert json.loads(plain) == state
