"""Cross-cutting fuzz: every public parser and opener of crypto/ on hostile input.

Each test feeds random bytes or text, and mutations of a valid sample (bit flips, insertions,
deletions, truncation, splices of format-relevant bytes), to one parser. The only exceptions
allowed to escape are CryptoError subclasses: an IndexError, struct.error, UnicodeDecodeError,
binascii.Error, OverflowError or a bare ValueError/TypeError from a library is a bug. Where a
random input cannot get past a signature, the test also signs hostile field values with a
known key, so that the checks after signature verification are reached too.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Callable
from typing import Any, TypeVar

import nacl.signing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crypto import (
    case,
    checkpoint,
    commitment,
    cosignature,
    envelope,
    feed,
    keys,
    merkle,
    note,
    puzzle,
    tiles,
    tree_state,
)
from crypto.errors import CryptoError

T = TypeVar("T")

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- fixed, deterministic material ----------------------------------------------------------

ORIGIN = "log.example.org/ncii"
LOG = keys.signer_key_from_seed(ORIGIN, bytes(range(32)))
OTHER = keys.signer_key_from_seed("other.example.org", bytes(range(1, 33)))
WITNESS = keys.signer_key_from_seed(
    "witness.example.com", bytes(range(2, 34)), keys.ALG_COSIGNATURE_V1
)
EDKEY = nacl.signing.SigningKey(bytes(range(3, 35)))
TS = 1_767_225_600

LEAVES = [merkle.leaf_hash(b"entry %d" % i) for i in range(300)]
STORE = merkle.MemoryHashStore.from_leaf_hashes(LEAVES)
ROOT = merkle.tree_root(300, STORE)

CHECKPOINT = checkpoint.Checkpoint(ORIGIN, 300, ROOT)
SIGNED_CHECKPOINT = checkpoint.sign_checkpoint(CHECKPOINT, [LOG])
COSIGNED = cosignature.add_cosignature(SIGNED_CHECKPOINT, WITNESS, timestamp=TS)
NOTE = note.sign_note(b"hello\nworld\n\n", [LOG, OTHER])

ENVELOPE = envelope.seal(EDKEY, "submission", b'{"hashes":[]}', TS, bytes(16))
REQUEST = envelope.sign_partner_request(EDKEY, "POST", "/v1/feed?x=1", b"body", TS, bytes(16))
HEADER = REQUEST.to_header()

BINDING = feed.BatchBinding("hub.example.org/ncii-log", 256, 512)
RECIPIENT = feed.load_recipient_private(bytes(range(4, 36)))
BATCH_KEY = bytes(range(5, 37))
SEALED = feed.seal_batch(b"batch plaintext", BINDING, BATCH_KEY, bytes(24)).encode()
WRAP = feed.wrap_key(BATCH_KEY, feed.recipient_public_bytes(RECIPIENT), BINDING)

LEAF = commitment.LeafData.for_entry(commitment.LeafKind.ADDITION, b"entry", bytes(32)).encode()
SECRET = case.CaseSecret(bytes(range(16)))
CODE = SECRET.recovery_code()
CASE_ID = SECRET.case_id()

STATE = tree_state.TreeState.from_reader(300, STORE).to_bytes()
TILE = tiles.Tile(0, 1, 44)
TILE_BYTES = tiles.encode_tile(LEAVES[256:300])
BUNDLE = tiles.encode_entry_bundle([b"entry %d" % i for i in range(256, 300)])

# Bytes that matter to one format or another: separators, padding, the em dash, high bits.
SPECIAL = [
    b"\x00",
    b"\n",
    b"\n\n",
    b"\r",
    b" ",
    b"+",
    b"=",
    b"/",
    b"-",
    b"x",
    b".p/",
    b"\xe2\x80\x94 ",
    b"\xff",
    b"\x80",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"9" * 25,
    b"\xff" * 8,
    b"\x7f\xff\xff\xff\xff\xff\xff\xff",
]


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` changed by one to four random edits."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "special", "dup"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(pos, len(data) - 1)
            data[i] ^= draw(st.integers(1, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "special":
            chunk = draw(st.sampled_from(SPECIAL))
            if draw(st.booleans()):
                data[pos:pos] = chunk
            else:
                data[pos : pos + len(chunk)] = chunk
        elif op == "dup" and data:
            lo = min(pos, len(data) - 1)
            data[pos:pos] = data[lo : lo + draw(st.integers(1, 40))]
    return bytes(data)


def hostile(seed: bytes, max_size: int = 400) -> st.SearchStrategy[bytes]:
    """Random bytes, or ``seed`` mutated."""
    return st.one_of(st.binary(max_size=max_size), mutated(seed))


def hostile_text(seed: str) -> st.SearchStrategy[str]:
    """Random text (lone surrogates included), or the UTF-8 of ``seed`` mutated and decoded
    with surrogateescape so that invalid bytes survive as lone surrogates."""
    return st.one_of(
        st.text(max_size=200),
        st.text(alphabet=st.characters(codec=None), max_size=60),
        mutated(seed.encode()).map(lambda b: b.decode("utf-8", "surrogateescape")),
    )


def only_crypto_errors(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call ``fn``; a CryptoError is a fine answer, anything else propagates and fails."""
    try:
        return fn(*args, **kwargs)
    except CryptoError:
        return None


# -- encodings and keys ---------------------------------------------------------------------


@FUZZ
@given(data=st.one_of(hostile(b"AQuWbW9O/3uusV/RHwfp1uKkN2E5OkXlbvqXP7Y9KWix"), st.text()))
def test_canonical_base64(data: bytes | str) -> None:
    out = only_crypto_errors(keys.b64decode_canonical, data, "fuzz")
    if out is not None:
        assert base64.b64encode(out) == (data.encode() if isinstance(data, str) else data)


@FUZZ
@given(data=st.one_of(hostile(LOG.verifier.encode().encode()), hostile_text(LOG.verifier.encode())))
def test_verifier_key(data: bytes | str) -> None:
    key = only_crypto_errors(keys.parse_verifier_key, data)
    if key is not None:
        assert keys.parse_verifier_key(key.encode()) == key


@FUZZ
@given(data=st.one_of(hostile(WITNESS.encode().encode()), hostile_text(WITNESS.encode())))
def test_signer_key(data: bytes | str) -> None:
    key = only_crypto_errors(keys.parse_signer_key, data)
    if key is not None:
        assert key.encode() == (data if isinstance(data, str) else data.decode())


# -- notes, checkpoints, cosignatures -------------------------------------------------------


@FUZZ
@given(data=hostile(NOTE, 600))
def test_note(data: bytes) -> None:
    parsed = only_crypto_errors(note.parse_note, data)
    if parsed is not None:
        assert parsed.encode() == data
    only_crypto_errors(note.open_note, data, [LOG.verifier, OTHER.verifier])
    only_crypto_errors(note.parse_note, data, max_size=40, max_signatures=1)


@FUZZ
@given(data=hostile(CHECKPOINT.encode()))
def test_checkpoint_text(data: bytes) -> None:
    parsed = only_crypto_errors(checkpoint.parse_checkpoint, data)
    if parsed is not None:
        assert parsed.encode() == data


@FUZZ
@given(data=hostile(CHECKPOINT.encode()))
def test_signed_checkpoint_with_hostile_text(data: bytes) -> None:
    """A log key signing any text that is a valid note: opening must still only raise ours."""
    try:
        signed = note.sign_note(data, [LOG])
    except CryptoError:
        return
    only_crypto_errors(checkpoint.open_checkpoint, signed, [LOG.verifier], origin=ORIGIN)
    only_crypto_errors(
        cosignature.open_cosigned_checkpoint,
        cosignature.add_cosignature(signed, WITNESS, timestamp=TS)
        if only_crypto_errors(checkpoint.parse_checkpoint, data) is not None
        else signed,
        LOG.verifier,
        [WITNESS.verifier],
        origin=ORIGIN,
        quorum=1,
    )


@FUZZ
@given(data=hostile(COSIGNED, 600))
def test_cosigned_checkpoint(data: bytes) -> None:
    only_crypto_errors(checkpoint.open_checkpoint, data, [LOG.verifier], origin=ORIGIN)
    only_crypto_errors(cosignature.verify_cosignature, data, WITNESS.verifier, origin=ORIGIN)
    only_crypto_errors(
        cosignature.open_cosigned_checkpoint,
        data,
        LOG.verifier,
        [WITNESS.verifier],
        origin=ORIGIN,
        quorum=1,
    )
    parsed = only_crypto_errors(note.parse_note, data)
    if parsed is not None:
        for sig in parsed.signatures:
            only_crypto_errors(cosignature.parse_cosignature, sig)
    only_crypto_errors(cosignature.add_cosignature, data, WITNESS, timestamp=TS)


@FUZZ
@given(raw=st.binary(min_size=1, max_size=100), key_id=st.sampled_from([WITNESS.key_id, 0]))
def test_cosignature_line_of_any_length(raw: bytes, key_id: int) -> None:
    """A line by the witness's name and key ID with arbitrary signature bytes."""
    line = note.NoteSignature(WITNESS.name, key_id, raw)
    only_crypto_errors(cosignature.parse_cosignature, line)
    data = SIGNED_CHECKPOINT + line.encode_line()
    only_crypto_errors(
        cosignature.open_cosigned_checkpoint,
        data,
        LOG.verifier,
        [WITNESS.verifier],
        origin=ORIGIN,
        quorum=1,
    )


# -- envelopes and partner requests ---------------------------------------------------------


@FUZZ
@given(data=hostile(ENVELOPE))
def test_envelope(data: bytes) -> None:
    only_crypto_errors(envelope.peek_public_key, data)
    only_crypto_errors(envelope.open, data, "submission", TS)
    only_crypto_errors(envelope.open, data, "submission", TS, max_body=4)


@FUZZ
@given(
    purpose=st.binary(min_size=1, max_size=64),
    timestamp=st.integers(0, 2**64 - 1),
    body=st.binary(max_size=40),
    now=st.integers(0, 2**64),
)
def test_validly_signed_envelope_with_hostile_fields(
    purpose: bytes, timestamp: int, body: bytes, now: int
) -> None:
    """Fields no honest sealer writes, under a valid signature: checks after the signature."""
    head = b"".join(
        (
            envelope.MAGIC,
            bytes((envelope.VERSION, len(purpose))),
            purpose,
            bytes(EDKEY.verify_key),
            struct.pack(">Q", timestamp),
            bytes(16),
            struct.pack(">I", len(body)),
            body,
        )
    )
    data = head + EDKEY.sign(envelope.SIGNATURE_DOMAIN + head).signature
    opened = only_crypto_errors(envelope.open, data, purpose.decode("latin-1"), now)
    if opened is not None:
        assert 0 <= opened.timestamp <= envelope.MAX_TIMESTAMP
        assert opened.body == body


@FUZZ
@given(value=st.one_of(hostile_text(HEADER), st.binary(max_size=10).map(repr)))
def test_partner_request_header(value: str) -> None:
    parsed = only_crypto_errors(envelope.RequestSignature.from_header, value)
    if parsed is not None:
        assert parsed.to_header() == value
        only_crypto_errors(
            envelope.verify_partner_request,
            bytes(EDKEY.verify_key),
            parsed,
            "POST",
            "/v1/feed?x=1",
            b"body",
            TS,
        )


@FUZZ
@given(method=st.text(max_size=20), path=hostile_text("/v1/feed?x=1"))
def test_partner_request_message(method: str, path: str) -> None:
    only_crypto_errors(
        envelope.verify_partner_request, bytes(EDKEY.verify_key), REQUEST, method, path, b"", TS
    )


# -- leaves, feed, case keys ----------------------------------------------------------------


@FUZZ
@given(data=hostile(LEAF))
def test_leaf_data(data: bytes) -> None:
    leaf = only_crypto_errors(commitment.decode_leaf, data)
    if leaf is not None:
        assert leaf.encode() == data
        only_crypto_errors(leaf.verify, b"entry", data[:32])


@FUZZ
@given(entry=st.binary(max_size=40), salt=st.binary(max_size=40), value=st.binary(max_size=40))
def test_commitment(entry: bytes, salt: bytes, value: bytes) -> None:
    only_crypto_errors(commitment.verify_commitment, entry, salt, value)


@FUZZ
@given(data=hostile(SEALED))
def test_sealed_batch(data: bytes) -> None:
    only_crypto_errors(feed.SealedBatch.decode, data)
    only_crypto_errors(feed.SealedBatch.decode, data, 50)
    only_crypto_errors(feed.open_batch, data, BINDING, BATCH_KEY)
    only_crypto_errors(feed.open_wrapped_batch, data, WRAP, RECIPIENT, BINDING)


# Low-order X25519 points (and non-canonical encodings of them): enc values HPKE must refuse.
LOW_ORDER = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    b"\xff" * 32,
]


@FUZZ
@given(
    data=st.one_of(
        hostile(WRAP),
        st.builds(
            lambda enc, ct: b"NCFW\x01" + enc + ct,
            st.one_of(st.sampled_from(LOW_ORDER), st.binary(min_size=32, max_size=32)),
            st.binary(min_size=48, max_size=48),
        ),
    )
)
def test_key_wrap(data: bytes) -> None:
    only_crypto_errors(feed.unwrap_key, data, RECIPIENT, BINDING)
    only_crypto_errors(feed.open_wrapped_batch, SEALED, data, RECIPIENT, BINDING)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=40), st.sampled_from(LOW_ORDER)))
def test_recipient_keys(raw: bytes) -> None:
    public = only_crypto_errors(feed.load_recipient_public, raw)
    only_crypto_errors(feed.load_recipient_private, raw)
    if public is not None:
        only_crypto_errors(feed.wrap_key, BATCH_KEY, public, BINDING)
        only_crypto_errors(feed.wrap_key, BATCH_KEY, raw, BINDING)


@FUZZ
@given(code=hostile_text(CODE))
def test_recovery_code(code: str) -> None:
    secret = only_crypto_errors(case.CaseSecret.from_recovery_code, code)
    if secret is not None:
        assert case.CaseSecret.from_recovery_code(secret.recovery_code()) == secret


@FUZZ
@given(text=hostile_text(CASE_ID), raw=st.binary(max_size=40))
def test_case_id(text: str, raw: bytes) -> None:
    canonical = only_crypto_errors(case.parse_case_id, text)
    if canonical is not None:
        assert case.parse_case_id(canonical) == canonical
    only_crypto_errors(case.case_id, raw)
    only_crypto_errors(case.CaseSecret, raw)


# -- Merkle proofs, tree state, tiles -------------------------------------------------------

SIZES = st.one_of(
    st.integers(-3, 600), st.integers(2**63 - 3, 2**64 + 3), st.sampled_from([True, 1.0, "3"])
)
HASHES = st.one_of(
    st.binary(min_size=32, max_size=32), st.binary(max_size=40), st.sampled_from(LEAVES[:4])
)


@FUZZ
@given(
    index=SIZES,
    size=SIZES,
    proof=st.one_of(st.lists(HASHES, max_size=12), st.binary(max_size=64), st.none()),
    leaf=HASHES,
    root=HASHES,
)
def test_merkle_verification(index: Any, size: Any, proof: Any, leaf: Any, root: Any) -> None:
    only_crypto_errors(merkle.verify_inclusion, leaf, index, size, proof, root)
    only_crypto_errors(merkle.verify_consistency, index, size, proof, leaf, root)


@FUZZ
@given(index=SIZES, size=SIZES)
def test_merkle_generation(index: Any, size: Any) -> None:
    only_crypto_errors(merkle.inclusion_proof, index, size, STORE)
    only_crypto_errors(merkle.consistency_proof, index, size, STORE)
    only_crypto_errors(merkle.tree_root, size, STORE)


@FUZZ
@given(data=hostile(STATE, 200), size=st.one_of(st.none(), SIZES))
def test_tree_state(data: bytes, size: Any) -> None:
    state = only_crypto_errors(tree_state.TreeState.from_bytes, data)
    if state is not None:
        assert state.to_bytes() == data
    only_crypto_errors(
        tree_state.TreeState.from_bytes, data, expected_size=size, expected_root=ROOT
    )


@FUZZ
@given(path=st.one_of(hostile_text("tile/1/x001/x234/067.p/8"), hostile_text("tile/entries/001")))
def test_tile_path(path: str) -> None:
    tile = only_crypto_errors(tiles.parse_path, path)
    if tile is not None:
        assert tile.path == path


@FUZZ
@given(tile=hostile_text(TILE.path), data=hostile(TILE_BYTES, 2000))
def test_tile_bytes(tile: str, data: bytes) -> None:
    parsed = only_crypto_errors(tiles.parse_path, tile)
    if isinstance(parsed, tiles.Tile):
        only_crypto_errors(tiles.decode_tile, parsed, data)
    only_crypto_errors(tiles.decode_tile, TILE, data)


@FUZZ
@given(data=hostile(BUNDLE, 600), width=st.one_of(st.none(), st.integers(-2, 300)))
def test_entry_bundle(data: bytes, width: int | None) -> None:
    entries = only_crypto_errors(tiles.decode_entry_bundle, data, width)
    if entries is not None:
        assert tiles.encode_entry_bundle(entries) == data


def _tile_source(good: dict[str, bytes], replacement: bytes, victim: int) -> Callable[..., bytes]:
    """Serve the good tiles, except the victim-th distinct request, which gets hostile bytes."""
    seen: list[str] = []

    def fetch(tile: tiles.Tile | tiles.EntryBundle) -> bytes:
        if tile.path not in seen:
            seen.append(tile.path)
        if seen.index(tile.path) == victim:
            return replacement
        return good.get(tile.path, b"")

    return fetch


_ENTRIES = [b"entry %d" % i for i in range(300)]
_GOOD_TILES = tiles.append_tiles(0, lambda t: b"", entries=_ENTRIES).tiles


@FUZZ
@given(
    victim=st.integers(0, 4),
    replacement=st.one_of(
        st.sampled_from(list(_GOOD_TILES.values())).flatmap(lambda b: mutated(b)),
        st.binary(max_size=100),
    ),
    node=st.tuples(st.integers(0, 10), st.integers(0, 300)),
)
def test_tiles_from_hostile_storage(victim: int, replacement: bytes, node: tuple[int, int]) -> None:
    """Readers over tiles whose storage returns hostile bytes raise only our errors."""
    fetch = _tile_source(_GOOD_TILES, replacement, victim)
    reader = tiles.TileHashReader(300, ROOT, fetch)
    only_crypto_errors(reader.read_hashes, [merkle.NodeId(*node)])
    only_crypto_errors(merkle.inclusion_proof, node[1] % 300, 300, reader)
    fetch = _tile_source(_GOOD_TILES, replacement, victim)
    only_crypto_errors(tiles.append_tiles, 300, fetch, entries=[b"new"])


@FUZZ
@given(got=st.lists(st.one_of(HASHES, st.none(), st.integers()), max_size=5))
def test_hash_reader_returning_garbage(got: list[Any]) -> None:
    class Garbage:
        def read_hashes(self, nodes: Any) -> list[Any]:
            return got

    only_crypto_errors(tree_state.TreeState.from_reader, 7, Garbage())
    only_crypto_errors(merkle.inclusion_proof, 3, 7, Garbage())
    only_crypto_errors(merkle.tree_root, 7, Garbage())


def test_fuzz_fixtures_are_valid() -> None:
    """The seeds the mutations start from are accepted as they are (else the fuzz is blind)."""
    assert note.open_note(NOTE, [LOG.verifier]).text == b"hello\nworld\n\n"
    assert (
        cosignature.open_cosigned_checkpoint(
            COSIGNED, LOG.verifier, [WITNESS.verifier], origin=ORIGIN, quorum=1
        ).checkpoint
        == CHECKPOINT
    )
    assert envelope.open(ENVELOPE, "submission", TS).body == b'{"hashes":[]}'
    envelope.verify_partner_request(
        bytes(EDKEY.verify_key),
        envelope.RequestSignature.from_header(HEADER),
        "POST",
        "/v1/feed?x=1",
        b"body",
        TS,
    )
    assert feed.open_wrapped_batch(SEALED, WRAP, RECIPIENT, BINDING) == b"batch plaintext"
    assert commitment.decode_leaf(LEAF).encode() == LEAF
    assert case.CaseSecret.from_recovery_code(CODE) == SECRET
    assert case.parse_case_id(CASE_ID) == CASE_ID
    assert tree_state.TreeState.from_bytes(STATE).root() == ROOT
    assert tiles.decode_tile(TILE, TILE_BYTES) == LEAVES[256:300]
    assert len(tiles.decode_entry_bundle(BUNDLE, 44)) == 44
    reader = tiles.TileHashReader(300, ROOT, _tile_source(_GOOD_TILES, b"", 99))
    assert merkle.inclusion_proof(5, 300, reader) == merkle.inclusion_proof(5, 300, STORE)
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT


# -- case puzzle ----------------------------------------------------------------------------

PUZZLE_KEY = puzzle.challenge_key(bytes(range(32)))
PUZZLE_CHALLENGE = puzzle.issue_challenge(PUZZLE_KEY, 7, puzzle.PuzzleParams(2, 4, 1, 1))
PUZZLE_HEADER = puzzle.encode_solution(PUZZLE_CHALLENGE, 3)


@FUZZ
@given(data=hostile(PUZZLE_CHALLENGE.encode(), 60))
def test_puzzle_challenge(data: bytes) -> None:
    parsed = only_crypto_errors(puzzle.parse_challenge, data)
    if parsed is not None:
        assert parsed.encode() == data
        assert parsed.params.memory <= puzzle.MAX_MEMORY


@FUZZ
@given(data=st.one_of(hostile_text(PUZZLE_HEADER), st.text(max_size=100)))
def test_puzzle_header(data: str) -> None:
    """The hub's whole check on a hostile header (parse, MAC, epoch, at most one scrypt)."""
    only_crypto_errors(puzzle.verify, PUZZLE_KEY, data, bytes(32), 7)
