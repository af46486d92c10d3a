"""crypto/page.py: the example of specs/page-manifest.md, and every rule a reader enforces."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crypto.errors import MalformedError
from crypto.keys import signer_key_from_seed
from crypto.note import open_note, sign_note
from crypto.page import (
    build_manifest,
    content_security_policy,
    encode_manifest,
    parse_manifest,
    render_index,
)

SPEC = (Path(__file__).resolve().parents[1] / "specs" / "page-manifest.md").read_text()
ORIGIN = "hub.example.org/ncii"
EXAMPLE = {
    "index.html": b'<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    b'<meta name="ncii-log-key" content="">\n'
    b'<title>Example</title>\n<link rel="stylesheet" href="page.css">\n</head>\n<body>\n'
    b'<script type="module" src="app.js"></script>\n</body>\n</html>\n',
    "page.css": b"body{margin:0}\n",
    "app.js": b'import { x } from "./lib.js";\nconsole.log(x);\n',
    "lib.js": b"export const x = 1;\n",
}


def _blocks() -> list[str]:
    return re.findall(r"```(?:html)?\n(.*?)```", SPEC, re.S)


def test_the_spec_example_is_what_the_code_builds() -> None:
    key = signer_key_from_seed(ORIGIN, bytes(32))
    manifest, index = build_manifest(ORIGIN, EXAMPLE, key.verifier.encode())
    note = sign_note(encode_manifest(manifest), [key])
    blocks = _blocks()
    assert blocks[0] == note.decode()
    assert blocks[1] == index.body.decode()
    assert blocks[2].strip() == "Content-Security-Policy: " + content_security_policy(
        index.importmap_hash
    )
    assert key.verifier.encode() in SPEC
    assert parse_manifest(open_note(note, [key.verifier]).text, ORIGIN) == manifest


def _text() -> list[str]:
    manifest, _ = build_manifest(ORIGIN, EXAMPLE)
    return encode_manifest(manifest).decode().splitlines()


@pytest.mark.parametrize(
    "change",
    [
        lambda ls: ["other.example/log", *ls[1:]],
        lambda ls: [ls[0], "42", *ls[2:]],
        lambda ls: [*ls[:2], "tree " + "0" * 32, *ls[3:]],
        lambda ls: [*ls[:4], ls[5], ls[4], *ls[6:]],  # unsorted
        lambda ls: [*ls[:5], ls[4], *ls[5:]],  # repeated
        lambda ls: [*ls[:4], ls[4].replace("/s/", "/x/"), *ls[5:]],
        lambda ls: [*ls[:4], ls[4].replace(" app.js", " ../app.js"), *ls[5:]],
        lambda ls: [*ls[:4], *ls[6:]],  # index.html's line gone: tree no longer matches
        lambda ls: [*ls[:4], ls[4][:10], *ls[5:]],
    ],
)
def test_reader_rejects(change: object) -> None:
    lines = change(_text())  # type: ignore[operator]
    with pytest.raises(MalformedError):
        parse_manifest(("\n".join(lines) + "\n").encode(), ORIGIN)


@pytest.mark.parametrize(
    "index",
    [
        b"<head><script>alert(1)</script></head>",
        b"<head><style>p{}</style></head>",
        b'<head></head><body style="x"></body>',
        b'<head></head><body onload="x()"></body>',
        b'<head><script src="https://cdn.example/x.js"></script></head>',
        b'<head><script src="../outside.js"></script></head>',
    ],
)
def test_index_rewrite_refuses_what_the_policy_would_block(index: bytes) -> None:
    with pytest.raises(MalformedError):
        render_index(index, {"index.html": bytes(32)}, "0" * 32)


def test_js_references_skip_comments_but_not_strings() -> None:
    from auditor.page import js_references

    source = (
        b'import { a } from "./a.js";\n'
        b"/* import { b } from '@bare/b.js'; */\n"
        b"// import './c.js';\n"
        b'const glob = "image/*"; export { d } from "./d.js";\n'
        b'const w = new Worker(new URL("./w.js", import.meta.url), { type: "module" });\n'
        b'await import("./e.js"); /* "*/\n'
    )
    assert sorted(js_references(source)) == ["./a.js", "./d.js", "./e.js", "./w.js"]


def test_index_offsets_survive_other_line_breaks() -> None:
    index = '<head>\r<title>x\u2028y</title>\x0c<link rel="stylesheet" href="a.css"></head>'
    out = render_index(index.encode(), {"a.css": bytes(32)}, "0" * 32).body.decode()
    assert 'href="/s/00000000000000000000000000000000/a.css" integrity="sha256-' in out
    assert "x\u2028y" in out


def test_the_log_key_meta_is_filled_and_only_it() -> None:
    key = signer_key_from_seed(ORIGIN, bytes(32)).verifier.encode()
    digests = {"index.html": bytes(32)}
    index = b'<head><meta name="ncii-log-key" content="stale" id="k"><title>x</title></head>'
    out = render_index(index, digests, "0" * 32, key).body.decode()
    assert f'<meta name="ncii-log-key" id="k" content="{key}">' in out
    assert "stale" not in out
    # No key given: the meta is left as it is; no meta: the key changes nothing.
    assert b'content="stale"' in render_index(index, digests, "0" * 32).body
    plain = b"<head><title>x</title></head>"
    assert render_index(plain, digests, "0" * 32, key) == render_index(plain, digests, "0" * 32)
    with pytest.raises(MalformedError, match="more than one"):
        twice = index.replace(b"<title>", b'<meta name="ncii-log-key" content=""><title>')
        render_index(twice, digests, "0" * 32, key)
    with pytest.raises(MalformedError, match="log key"):
        render_index(index, digests, "0" * 32, 'x" onload="y')


def test_the_index_can_be_mounted_under_a_prefix() -> None:
    digests = {"index.html": bytes(32), "a.js": bytes(32)}
    index = b'<head></head><body><script type="module" src="./a.js"></script></body>'
    out = render_index(index, digests, "1" * 32, prefix="/tok/").body.decode()
    assert 'src="/tok/s/11111111111111111111111111111111/a.js"' in out
    assert '"/tok/s/11111111111111111111111111111111/a.js": "sha256-' in out
    for bad in ("tok/", "/tok", "/../", "/a b/"):
        with pytest.raises(MalformedError, match="prefix"):
            render_index(index, digests, "1" * 32, prefix=bad)
