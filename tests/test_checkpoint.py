"""tlog-checkpoint text encoding, signing and opening (crypto/checkpoint.py)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.checkpoint import (
    MAX_CHECKPOINT_SIZE,
    Checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from crypto.errors import (
    CryptoError,
    InvalidSignatureError,
    MalformedError,
    NoKnownSignatureError,
    WrongPurposeError,
)
from crypto.keys import signer_key_from_seed

LOG = signer_key_from_seed("log.example.org/x", bytes([7]) * 32)
OTHER = signer_key_from_seed("log.example.org/y", bytes([8]) * 32)
ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()

lines = st.text(st.characters(codec="utf-8", min_codepoint=0x20), min_size=1, max_size=20)


@settings(max_examples=200, deadline=None)
@given(
    origin=lines,
    size=st.integers(0, MAX_CHECKPOINT_SIZE),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(lines, max_size=3),
)
def test_encode_parse_roundtrip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    text = checkpoint.encode()
    assert parse_checkpoint(text) == checkpoint
    assert parse_checkpoint(text).encode() == text


def test_exact_encoding() -> None:
    checkpoint = Checkpoint("example.com/behind-the-sofa", 20852163, ROOT, ("ext",))
    assert (
        checkpoint.encode() == f"example.com/behind-the-sofa\n20852163\n{ROOT_B64}\next\n".encode()
    )


@pytest.mark.parametrize(
    "size", ["01", "00", "-1", "+1", str(2**64), "1" * 25, " 1", "1 ", "1_0", "0x1", "\u0661", ""]
)
def test_bad_sizes(size: str) -> None:
    with pytest.raises(MalformedError):
        parse_checkpoint(f"o\n{size}\n{ROOT_B64}\n".encode())


def test_size_bounds() -> None:
    assert parse_checkpoint(f"o\n0\n{ROOT_B64}\n".encode()).size == 0
    assert parse_checkpoint(f"o\n{2**64 - 1}\n{ROOT_B64}\n".encode()).size == 2**64 - 1


@pytest.mark.parametrize(
    "root",
    [
        base64.b64encode(ROOT[:31]).decode(),
        base64.b64encode(ROOT + b"\x00").decode(),
        ROOT_B64.rstrip("="),
        ROOT_B64[:-2] + "B=",  # non-zero padding bits
        ROOT.hex(),
        "",
        ROOT_B64 + " ",
    ],
)
def test_bad_roots(root: str) -> None:
    with pytest.raises(MalformedError):
        parse_checkpoint(f"o\n1\n{root}\n".encode())


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\n",
        f"\n1\n{ROOT_B64}\n".encode(),  # empty origin
        f"o\n1\n{ROOT_B64}".encode(),  # no final newline
        f"o\n1\n{ROOT_B64}\n\n".encode(),  # trailing empty line
        f"o\n1\n{ROOT_B64}\na\n\nb\n".encode(),  # empty extension line
        b"o\n1\n",
        f"o\r\n1\r\n{ROOT_B64}\r\n".encode(),
        f"o\xff\n1\n{ROOT_B64}\n".encode("latin-1"),
    ],
)
def test_bad_texts(text: bytes) -> None:
    with pytest.raises(MalformedError):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    "args",
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("o", -1, ROOT, ()),
        ("o", 2**64, ROOT, ()),
        ("o", True, ROOT, ()),
        ("o", 1, ROOT[:31], ()),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("a\nb",)),
        ("\ud800", 1, ROOT, ()),
    ],
)
def test_constructor_checks(args: tuple[object, ...]) -> None:
    with pytest.raises(MalformedError):
        Checkpoint(*args)  # type: ignore[arg-type]


def test_sign_and_open() -> None:
    checkpoint = Checkpoint(LOG.name, 10, ROOT)
    data = sign_checkpoint(checkpoint, [LOG])
    signed = open_checkpoint(data, [LOG.verifier], origin=LOG.name)
    assert signed.checkpoint == checkpoint
    assert signed.note.verified_by == (LOG.verifier,)


def test_open_errors() -> None:
    data = sign_checkpoint(Checkpoint(LOG.name, 10, ROOT), [LOG])
    with pytest.raises(WrongPurposeError):
        open_checkpoint(data, [LOG.verifier], origin=OTHER.name)
    with pytest.raises(NoKnownSignatureError):
        open_checkpoint(data, [OTHER.verifier], origin=LOG.name)
    with pytest.raises(InvalidSignatureError):
        open_checkpoint(data.replace(b"\n10\n", b"\n11\n"), [LOG.verifier], origin=LOG.name)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_parsers(data: bytes) -> None:
    for call in (
        lambda: parse_checkpoint(data),
        lambda: open_checkpoint(data, [LOG.verifier], origin=LOG.name),
    ):
        try:
            call()
        except CryptoError:
            pass


@settings(max_examples=300, deadline=None)
@given(
    origin=st.text(max_size=10),
    size=st.text(alphabet="0123456789-+ x", max_size=22),
    root=st.text(alphabet="ABCxyz019+/= ", max_size=46),
    tail=st.text(max_size=10),
)
def test_fuzz_structured(origin: str, size: str, root: str, tail: str) -> None:
    text = f"{origin}\n{size}\n{root}\n{tail}".encode("utf-8", "surrogatepass")
    try:
        checkpoint = parse_checkpoint(text)
    except MalformedError:
        return
    assert checkpoint.encode() == text
