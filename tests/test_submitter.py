"""Trusted-submitter endorsements (specs/submitter.md): the example of section 1 as a vector,
and the refusals a hub relies on."""

from __future__ import annotations

import nacl.signing
import pytest

from crypto.errors import InvalidSignatureError, MalformedError
from crypto.submitter import SUBMITTER_DOMAIN, Endorsement, endorse, verify_endorsement

SEED = bytes(range(32))
BODY = b"example envelope bytes"
HEADER = (
    "A6EHv_POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg:"
    "rgNL4hUI-ws5alhY4dGkQS8Du6D1P7b4izb08-zgzcGkAsbbzPjDbZ2VuC8UbIawsc9FFE6_1PVuy1v3_aXuDg"
)


def test_spec_example_vector() -> None:
    got = endorse(nacl.signing.SigningKey(SEED), BODY)
    assert got.to_header() == HEADER
    parsed = Endorsement.from_header(HEADER)
    assert parsed == got
    verify_endorsement(parsed, BODY)
    # The signed bytes are the prefix and the exact body (nothing parsed, nothing hashed).
    nacl.signing.VerifyKey(parsed.public_key).verify(SUBMITTER_DOMAIN + BODY, parsed.signature)


@pytest.mark.parametrize(
    "body", [BODY + b"x", BODY[:-1], b"", BODY.upper()], ids=["longer", "shorter", "empty", "case"]
)
def test_endorsement_is_bound_to_the_exact_bytes(body: bytes) -> None:
    with pytest.raises(InvalidSignatureError):
        verify_endorsement(Endorsement.from_header(HEADER), body)


def test_endorsement_of_another_key_or_domain_does_not_verify() -> None:
    other = nacl.signing.SigningKey.generate()
    forged = Endorsement(Endorsement.from_header(HEADER).public_key, endorse(other, BODY).signature)
    with pytest.raises(InvalidSignatureError):
        verify_endorsement(forged, BODY)
    # A plain signature over the body (no prefix) is not an endorsement.
    key = nacl.signing.SigningKey(SEED)
    plain = Endorsement(bytes(key.verify_key), key.sign(BODY).signature)
    with pytest.raises(InvalidSignatureError):
        verify_endorsement(plain, BODY)


@pytest.mark.parametrize(
    "value",
    [
        "",
        HEADER + " ",
        " " + HEADER,
        HEADER.replace(":", ";"),
        HEADER.replace(":", ":="),
        HEADER[:-1] + "h",  # non-canonical padding bits
        HEADER.replace("A6EH", "A6E+"),
        HEADER[:43],
        "x" * 130,
    ],
    ids=["empty", "trailing", "leading", "sep", "padding", "bits", "alphabet", "key-only", "junk"],
)
def test_header_parser_refuses_every_other_form(value: str) -> None:
    with pytest.raises(MalformedError):
        Endorsement.from_header(value)
