"""cffi build script for flux_journal._core (out-of-line API mode).

setup.py names this file in ``cffi_modules``, so ``pip install .`` compiles
the C core into the extension ``flux_journal._core``.  The declarations
Python may use live in csrc/cdef.h.
"""

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = ["fj_payload.c", "fj_names.c", "fj_heap.c", "fj_slab.c", "fj_stream.c", "fj_flux.c"]

# Extra compiler flags, e.g. for a sanitizer build:
#   FLUX_JOURNAL_CFLAGS="-fsanitize=address,undefined -O1 -g" pip install .
EXTRA_CFLAGS = os.environ.get("FLUX_JOURNAL_CFLAGS", "").split()

ffibuilder = FFI()
with open(os.path.join(HERE, "cdef.h"), encoding="utf-8") as f:
    ffibuilder.cdef(f.read())

ffibuilder.set_source(
    "flux_journal._core",
    '#include "fj_payload.h"\n#include "fj_record.h"\n#include "fj_stream.h"\n#include "fj_flux.h"\n',
    sources=[os.path.relpath(os.path.join(HERE, s)) for s in SOURCES],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-std=c99", "-O3", "-Wall"] + EXTRA_CFLAGS,
    extra_link_args=EXTRA_CFLAGS,
    libraries=["dl"],  # fj_flux.c: dlopen() before glibc 2.34
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
