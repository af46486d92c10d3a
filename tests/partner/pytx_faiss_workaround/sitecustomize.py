"""Test-only workaround for a python-threatexchange 1.2.17 + faiss bug (not for production).

pytx's CLI stores its PDQ index (``PDQIndex``: faiss ``IndexBinaryMultiHash`` inside an
``IndexBinaryIDMap2``) in a file and reads it back for ``threatexchange match``; the read-back
index finds nothing (faiss-cpu 1.8.0 to 1.15.1 tried, numpy 1 and 2), so ``threatexchange
match photo`` matches nothing for any exchange. tests/partner/pytxkit.py puts this folder on
PYTHONPATH of the ``threatexchange`` subprocesses only when it detects that bug; PDQ indexes
are then faiss flat binary indexes (which do survive the round trip) with pytx's usual
threshold of 31 bits. Everything else (fetch, our exchange, state, index build, match output)
is the unmodified package.
"""

from threatexchange.signal_type.pdq.pdq_index import PDQFlatIndex
from threatexchange.signal_type.pdq.signal import PdqSignal


class FlatPdqIndex31(PDQFlatIndex):  # type: ignore[misc]
    @classmethod
    def get_match_threshold(cls) -> int:
        return 31


PdqSignal.get_index_cls = classmethod(lambda cls: FlatPdqIndex31)  # type: ignore[method-assign,assignment]
