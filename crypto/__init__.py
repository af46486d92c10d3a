"""crypto: the exchange's protocol primitives, pure and with no I/O.

RFC 9162 Merkle trees and proofs, C2SP signed notes, checkpoints, cosignatures and tiles, signed
envelopes, leaf commitments, feed encryption and case keys. Everything else in the project builds
on this package; it imports nothing of the project. Formats are specified in specs/.
"""
