"""crypto: the exchange's protocol primitives, pure and with no I/O.

Everything else in the project builds on this package; it imports nothing of the project.
Each format is specified in specs/ (see specs/README.md); the modules, one job each:

* ``errors``      the exception tree: MalformedError (input breaks its format) and
                  VerificationError (well-formed input that does not verify), with subclasses
* ``merkle``      RFC 9162 hashing, proofs from stored subtree hashes, strict verification
* ``tree_state``  the append-only frontier the sequencer persists between batches
* ``tiles``       C2SP tlog-tiles: paths, tile and entry-bundle bytes, writes, verified reads
* ``keys``        C2SP note keys (Ed25519 and cosignature/v1) and their string forms
* ``note``        C2SP signed notes: parse, sign, open against trusted keys
* ``checkpoint``  C2SP tlog-checkpoint text, signing and opening
* ``cosignature`` C2SP tlog-cosignature (cosignature/v1) and witness quorums
* ``witness_protocol`` C2SP tlog-witness bodies: add-checkpoint request, 409 size, 200 lines
* ``envelope``    signed request envelopes and partner HTTP request signatures
* ``commitment``  salted leaf commitments and the 34-byte leaf data
* ``aead``        XChaCha20-Poly1305 from libsodium with the lengths checked once (hot path)
* ``feed``        per-batch XChaCha20-Poly1305 and per-partner HPKE key wraps
* ``case``        case secret, recovery code, derived Ed25519 case key and case id
* ``puzzle``      the case puzzle: HMAC challenges, scrypt work bound to a case key, checks
* ``submitter``   a trusted submitter's endorsement: its signature over the exact envelope bytes
* ``page``        the person's page as served: file rules, tree id, index rewrite with SRI, CSP,
                  and the page manifest signed as a note
* ``urlredact``   URLs as they may be shown (logs, errors, status): no userinfo, query or
                  fragment, so credentials in a witness, hub or webhook URL never leak
* ``boundedjson`` the one JSON reader for untrusted text: size, depth (no recursion), UTF-8,
                  no NaN/Infinity or unpaired surrogates; JsonBoundsError otherwise

Canonical unpadded base64url (``b64url_encode``, ``b64url_decode_canonical``) is exported too, so
that the HTTP edges of the hub and the partner SDK share one strict decoder with crypto/.

The names below are the ones the hub, client, partner SDK and auditor need; everything else
stays in its module. Randomness has a deterministic variant everywhere (explicit seed, nonce,
salt or key) and the clock is always a parameter.
"""

from __future__ import annotations

from crypto._common import b64url_decode_canonical, b64url_encode
from crypto.case import CaseSecret, case_id, parse_case_id
from crypto.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, sign_checkpoint
from crypto.commitment import LeafData, LeafKind, commit, new_salt, verify_commitment
from crypto.cosignature import (
    Cosignature,
    CosignedCheckpoint,
    add_cosignature,
    cosign_checkpoint,
    open_cosigned_checkpoint,
    verify_cosignature,
)
from crypto.envelope import (
    OpenedEnvelope,
    Purpose,
    RequestSignature,
    new_nonce,
    sign_partner_request,
    verify_partner_request,
)
from crypto.envelope import open as open_envelope
from crypto.envelope import seal as seal_envelope
from crypto.errors import (
    CommitmentMismatchError,
    CryptoError,
    DecryptionError,
    InconsistentTreeError,
    InvalidProofError,
    InvalidSignatureError,
    KeyFormatError,
    LimitExceededError,
    MalformedError,
    NoKnownSignatureError,
    RecoveryCodeError,
    StaleMessageError,
    VerificationError,
    WrongPurposeError,
)
from crypto.feed import (
    BatchBinding,
    SealedBatch,
    generate_recipient_key,
    load_recipient_private,
    load_recipient_public,
    open_wrapped_batch,
    recipient_public_bytes,
    seal_batch_fresh,
    wrap_key,
)
from crypto.keys import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    SignerKey,
    VerifierKey,
    generate_signer_key,
    parse_signer_key,
    parse_verifier_key,
    signer_key_from_seed,
)
from crypto.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    MAX_TREE_SIZE,
    HashReader,
    NodeId,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    tree_root,
    verify_consistency,
    verify_inclusion,
)
from crypto.note import Note, open_note, sign_note
from crypto.tiles import (
    EntryBundle,
    Tile,
    TileAppender,
    TileHashReader,
    append_tiles,
    decode_entry_bundle,
    decode_tile,
    entry_bundles_for_size,
    parse_path,
    tiles_for_size,
)
from crypto.tree_state import TreeState
from crypto.urlredact import redact_url, redact_urls
from crypto.witness_protocol import (
    AddCheckpointRequest,
    attach_signatures,
    encode_add_checkpoint,
    encode_size_body,
    parse_add_checkpoint,
    parse_cosignature_response,
    parse_size_body,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MAX_TREE_SIZE",
    "AddCheckpointRequest",
    "BatchBinding",
    "CaseSecret",
    "Checkpoint",
    "CommitmentMismatchError",
    "Cosignature",
    "CosignedCheckpoint",
    "CryptoError",
    "DecryptionError",
    "EntryBundle",
    "HashReader",
    "InconsistentTreeError",
    "InvalidProofError",
    "InvalidSignatureError",
    "KeyFormatError",
    "LeafData",
    "LeafKind",
    "LimitExceededError",
    "MalformedError",
    "NoKnownSignatureError",
    "NodeId",
    "Note",
    "OpenedEnvelope",
    "Purpose",
    "RecoveryCodeError",
    "RequestSignature",
    "SealedBatch",
    "SignedCheckpoint",
    "SignerKey",
    "StaleMessageError",
    "Tile",
    "TileAppender",
    "TileHashReader",
    "TreeState",
    "VerificationError",
    "VerifierKey",
    "WrongPurposeError",
    "add_cosignature",
    "append_tiles",
    "attach_signatures",
    "b64url_decode_canonical",
    "b64url_encode",
    "case_id",
    "commit",
    "consistency_proof",
    "cosign_checkpoint",
    "decode_entry_bundle",
    "decode_tile",
    "encode_add_checkpoint",
    "encode_size_body",
    "entry_bundles_for_size",
    "generate_recipient_key",
    "generate_signer_key",
    "inclusion_proof",
    "leaf_hash",
    "load_recipient_private",
    "load_recipient_public",
    "new_nonce",
    "new_salt",
    "open_checkpoint",
    "open_cosigned_checkpoint",
    "open_envelope",
    "open_note",
    "open_wrapped_batch",
    "parse_add_checkpoint",
    "parse_case_id",
    "parse_cosignature_response",
    "parse_path",
    "parse_signer_key",
    "parse_size_body",
    "parse_verifier_key",
    "recipient_public_bytes",
    "redact_url",
    "redact_urls",
    "root_from_leaf_hashes",
    "seal_batch_fresh",
    "seal_envelope",
    "sign_checkpoint",
    "sign_note",
    "sign_partner_request",
    "signer_key_from_seed",
    "tiles_for_size",
    "tree_root",
    "verify_commitment",
    "verify_consistency",
    "verify_cosignature",
    "verify_inclusion",
    "verify_partner_request",
    "wrap_key",
]
