"""The C core's exported surface: what ``flux_journal._core`` offers
Python is exactly the list below, and each name is used somewhere.

csrc/cdef.h is meant to expose what the product uses and no more; this
pins it, so that adding or dropping a C entry point is a decision a
reviewer sees in this file, not a side effect of editing the cdef.
"""

import pathlib
import re

from flux_journal._core import ffi, lib

REPO = pathlib.Path(__file__).resolve().parent.parent

#: Constants: error codes and limits, stream flags, markers and the
#: per-event flags of a popped batch, the C drain's outcomes.
CONSTANTS = {
    "FJ_OK", "FJ_ENOMEM", "FJ_EUNBOUND", "FJ_ELIBFLUX", "FJ_FIRST_SHAPE_ERROR", "FJ_MAX_NAMES", "FJ_WIDE_INT_DIGITS",
    "FJ_STREAM_HISTORY", "FJ_STREAM_ORDERED", "FJ_STREAM_JOB", "FJ_STREAM_RESOURCE",
    "FJ_MARK_SENTINEL", "FJ_MARK_END", "FJ_MARK_USER", "FJ_FED_SENTINEL",
    "FJ_EV_IRREGULAR", "FJ_EV_JOBSPEC", "FJ_EV_R", "FJ_EV_TIE", "FJ_EV_FINAL",
    "FJ_DRAIN_IDLE", "FJ_DRAIN_LIMIT", "FJ_DRAIN_SENTINEL", "FJ_DRAIN_REFUSED",
    "FJ_DRAIN_NO_PAYLOAD", "FJ_DRAIN_ERROR", "FJ_NEXT_POPPED",
}  # fmt: skip

#: Functions: the payload check, the stream, its batches, libflux's drain,
#: and the Python callback the C continuation calls.
FUNCTIONS = {
    "fj_payload_init", "fj_payload_parse", "fj_payload_release", "fj_strerror",
    "fj_stream_create", "fj_stream_destroy", "fj_stream_feed", "fj_stream_feed_many",
    "fj_stream_feed_cstr", "fj_stream_filter", "fj_stream_check_range", "fj_stream_mark",
    "fj_stream_end", "fj_stream_pop", "fj_stream_stats", "fj_stream_name",
    "fj_batch_create", "fj_batch_destroy",
    "fj_flux_bind", "fj_flux_bound", "fj_flux_drain", "fj_flux_wait", "fj_flux_next", "fj_flux_reset",
    "fj_flux_then", "fj_py_deliver",
}  # fmt: skip

TYPES = {
    "fj_batch_t", "fj_drain_t", "fj_error_t", "fj_flux_deliver_f", "fj_flux_then_t",
    "fj_payload_t", "fj_stats_t", "fj_stream_t",
}  # fmt: skip


def test_exported_names_are_pinned():
    assert set(dir(lib)) == CONSTANTS | FUNCTIONS


def test_exported_types_are_pinned():
    typedefs, structs, unions = ffi.list_types()
    assert set(typedefs) == TYPES
    assert structs == ["fj_stream"] and unions == []  # fj_stream_t stays opaque


def test_every_exported_name_is_used():
    """An entry point nothing calls is surface to keep for no one."""
    this = pathlib.Path(__file__).resolve()
    sources = [
        p.read_text()
        for folder in ("flux_journal", "bench", "tests")
        for p in (REPO / folder).rglob("*.py")
        if p.resolve() != this
    ]
    text = "\n".join(sources)
    unused = sorted(n for n in CONSTANTS | FUNCTIONS if not re.search(rf"\b{n}\b", text))
    assert unused == []
