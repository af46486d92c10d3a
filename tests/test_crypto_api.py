"""crypto/ as a package: its public names, and the purity rules every module keeps."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import crypto

CRYPTO = Path(crypto.__file__).resolve().parent
MODULES = sorted(p for p in CRYPTO.glob("*.py"))
ALLOWED_IMPORTS = {"crypto", "cryptography", "nacl", "__future__"}
# The only way randomness enters: thin wrappers over the OS generator.
ALLOWED_OS = {"urandom"}
FORBIDDEN_CALLS = {"open", "print", "input", "eval", "exec"}


def test_every_exported_name_exists_and_star_import_matches() -> None:
    namespace: dict[str, object] = {}
    exec("from crypto import *", namespace)
    exported = {name for name in namespace if not name.startswith("__")}
    assert exported == set(crypto.__all__)
    assert len(crypto.__all__) == len(set(crypto.__all__))


def test_envelope_verbs_are_exported_under_unambiguous_names() -> None:
    assert crypto.open_envelope is crypto.envelope.open
    assert crypto.seal_envelope is crypto.envelope.seal
    assert "open" not in crypto.__all__


def test_docstring_lists_every_public_module() -> None:
    doc = crypto.__doc__ or ""
    for path in MODULES:
        if path.stem.startswith("_"):
            continue
        assert f"``{path.stem}``" in doc, path.stem


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_module_is_pure(path: Path) -> None:
    """No project imports outside crypto/, no files, clocks, environment or printing."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    stdlib = {
        "array",
        "base64",
        "binascii",
        "collections",
        "dataclasses",
        "enum",
        "functools",
        "hashlib",
        "hmac",
        "html",  # escaping and the HTML tokenizer (crypto/page.py): text in, text out
        "itertools",
        "json",
        "os",
        "re",
        "struct",
        "types",
        "typing",
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {(node.module or "").split(".")[0]}
        else:
            roots = set()
        assert roots <= ALLOWED_IMPORTS | stdlib, (path.stem, roots)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id == "os":
                assert node.attr in ALLOWED_OS, (path.stem, node.attr)
            assert node.value.id not in {"time", "datetime", "random"}, path.stem
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, (path.stem, node.func.id)


def test_b64url_is_strict_and_canonical() -> None:
    raw = bytes(range(32))
    text = crypto.b64url_encode(raw)
    assert len(text) == 43 and crypto.b64url_decode_canonical(text, 32, "key") == raw
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    bad = [
        text + "=",  # padding
        text[:-1],  # wrong size
        text.replace(text[5], "+"),  # standard alphabet
        "/" + text[1:],
        " " + text[1:],
        text[:-1] + last[last.index(text[-1]) | 1],  # non-zero padding bits
        text[:-1] + "é",
    ]
    for value in bad:
        with pytest.raises(crypto.MalformedError):
            crypto.b64url_decode_canonical(value, 32, "key")
    with pytest.raises(crypto.MalformedError):
        crypto.b64url_decode_canonical(raw, 32, "key")  # type: ignore[arg-type]
