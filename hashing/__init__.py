"""hashing: media fingerprints shared by the client and the partner SDK.

PDQ for images (reference compatible: specs/pdq.md), vPDQ for video (specs/vpdq.md), MD5 and SHA-256
of file bytes, Hamming distance and the match rules. A pure library: it reads the streams it is
given, opens no paths and touches no network.

Modules: ``pdq`` (the algorithm on pixel arrays), ``image`` (decoding images the way a person sees
them), ``vpdq`` (video), ``digest`` (streamed MD5/SHA-256), ``kinds`` (image/video/other from the
bytes), ``errors``.
"""

from hashing.digest import FileDigests, digest_bytes, digest_stream
from hashing.errors import (
    HashingError,
    InvalidHashError,
    LowQualityError,
    MediaError,
    MediaTooLargeError,
    UnreadableMediaError,
    UnsupportedMediaError,
)
from hashing.image import hash_image, hash_image_dihedral
from hashing.kinds import Kind, sniff
from hashing.pdq import (
    MATCH_THRESHOLD,
    QUALITY_FLOOR,
    Dihedral,
    PdqHash,
    hamming_distance,
    is_match,
    require_quality,
)
from hashing.vpdq import NoVideoStreamError, VpdqFeature, VpdqMatch, hash_video, match_features

__all__ = [
    "MATCH_THRESHOLD",
    "QUALITY_FLOOR",
    "Dihedral",
    "FileDigests",
    "HashingError",
    "InvalidHashError",
    "Kind",
    "LowQualityError",
    "MediaError",
    "MediaTooLargeError",
    "NoVideoStreamError",
    "PdqHash",
    "UnreadableMediaError",
    "UnsupportedMediaError",
    "VpdqFeature",
    "VpdqMatch",
    "digest_bytes",
    "digest_stream",
    "hamming_distance",
    "hash_image",
    "hash_image_dihedral",
    "hash_video",
    "is_match",
    "match_features",
    "require_quality",
    "sniff",
]
