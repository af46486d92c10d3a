"""hashing: media fingerprints shared by the client and the partner SDK.

PDQ for images (reference compatible), vPDQ for video, MD5 and SHA-256 of file bytes, Hamming
distance and match rules. A pure library: it reads the streams it is given and touches no network.
"""
