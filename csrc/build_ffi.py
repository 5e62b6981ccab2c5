"""cffi build script for flux_journal._core (out-of-line API mode).

setup.py names this file in ``cffi_modules``, so ``pip install .`` compiles
the C core into the extension ``flux_journal._core``.  The declarations
Python may use live in csrc/cdef.h.
"""

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
# The payload scanner (JSON, strings, numbers, the response's shape) and
# what it needs; then the stream built on it.
SCANNER_SOURCES = [
    "fj_error.c",
    "fj_grow.c",
    "fj_string.c",
    "fj_json.c",
    "fj_number.c",
    "fj_payload.c",
]
SOURCES = SCANNER_SOURCES + ["fj_names.c", "fj_heap.c", "fj_slab.c", "fj_stream.c"]


def builder(module, cdef, headers, sources, csrc=None):
    """An FFI that compiles csrc/ *sources* into *module*, declaring *cdef*
    to Python and including *headers* (names in csrc/).  *csrc* is how the
    compiler is to reach csrc/: relative to the working directory by
    default, as setuptools wants.

    Extra compiler flags come from the environment, e.g. for a sanitizer
    build: FLUX_JOURNAL_CFLAGS="-fsanitize=address,undefined -O1 -g".
    """
    extra = os.environ.get("FLUX_JOURNAL_CFLAGS", "").split()
    csrc = csrc or os.path.relpath(HERE)
    ffi = FFI()
    ffi.cdef(cdef)
    ffi.set_source(
        module,
        "".join(f'#include "{h}"\n' for h in headers),
        sources=[os.path.join(csrc, s) for s in sources],
        include_dirs=[csrc],
        extra_compile_args=["-std=c99", "-O3", "-Wall"] + extra,
        extra_link_args=extra,
    )
    return ffi


with open(os.path.join(HERE, "cdef.h"), encoding="utf-8") as f:
    ffibuilder = builder(
        "flux_journal._core", f.read(), ["fj_payload.h", "fj_record.h", "fj_stream.h"], SOURCES
    )

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
