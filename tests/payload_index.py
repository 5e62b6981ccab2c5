"""The C payload scanner's index, for tests: a test-only cffi module.

The installed package sees the scanner's index as opaque (csrc/cdef.h):
only whether a payload parses matters to it.  Tests that check what the
scanner found (spans, flags, the id) build this module from the same
csrc/ sources and build options (csrc/build_ffi.py), once per change of
the sources, compiler flags or Python, into <repo>/build/test-ffi/.

``python tests/payload_index.py`` builds it ahead of time (the sanitizer
scripts do, outside of valgrind and the sanitizer runtime).
"""

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import pathlib
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parent.parent
CSRC = REPO / "csrc"
MODULE = "_fj_payload_index"

# The index's layout as the tests read it (csrc/fj_payload.h declares it
# in full; "...;" lets cffi take the rest from the compiler).
CDEF = """
#define FJ_OK ...
#define FJ_ENTRY_HAS_CONTEXT ...
#define FJ_ENTRY_IRREGULAR ...
#define FJ_ENTRY_NAME_ESCAPED ...
#define FJ_ENTRY_WIDE_INT ...
#define FJ_ENTRY_ISOLATE ...
#define FJ_ID_INT ...
typedef struct { int code; size_t offset; } fj_error_t;
typedef struct { uint32_t off; uint32_t len; } fj_span_t;
typedef struct { double timestamp; fj_span_t entry, name, context; uint32_t flags; ...; } fj_entry_t;
typedef struct { fj_span_t key, value; ...; } fj_member_t;
typedef struct { fj_member_t *members; size_t nmembers; fj_entry_t *entries; size_t nentries;
                 int id_kind; int64_t id; ...; } fj_payload_t;
void fj_payload_init (fj_payload_t *p);
void fj_payload_release (fj_payload_t *p);
int fj_payload_parse (fj_payload_t *p, const char *buf, size_t len, fj_error_t *err);
"""

# Set for the sanitizer runs; the compiler must not inherit them.
_RUNTIME_ENV = ("LD_PRELOAD", "ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC")


def _build_ffi():
    """csrc/build_ffi.py, loaded from the checkout."""
    spec = importlib.util.spec_from_file_location("_fj_build_ffi", CSRC / "build_ffi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _key(build):
    """What the built module depends on."""
    h = hashlib.sha1(CDEF.encode())
    for path in sorted(CSRC.glob("*.h")) + [CSRC / s for s in build.SCANNER_SOURCES]:
        h.update(path.name.encode() + path.read_bytes())
    for var in ("FLUX_JOURNAL_CFLAGS", "CC"):
        h.update(f"{var}={os.environ.get(var, '')}".encode())
    h.update(sys.version.encode() + sys.executable.encode())
    return h.hexdigest()[:16]


def build():
    """Path of the compiled module, building it if needed."""
    ffi_build = _build_ffi()
    target = REPO / "build" / "test-ffi" / _key(ffi_build)
    found = sorted(target.glob(MODULE + ".*.so")) if target.is_dir() else []
    if found:
        return found[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.pop(k) for k in _RUNTIME_ENV if k in os.environ}
    try:
        ffi = ffi_build.builder(
            MODULE, CDEF, ["fj_payload.h"], ffi_build.SCANNER_SOURCES, csrc=str(CSRC)
        )
        tmp = tempfile.mkdtemp(dir=target.parent)
        ffi.compile(tmpdir=tmp)
        try:
            os.rename(tmp, target)   # another process may have won
        except OSError:
            pass
    finally:
        os.environ.update(saved)
    return sorted(target.glob(MODULE + ".*.so"))[0]


def _load():
    path = build()
    loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
    spec = importlib.util.spec_from_file_location(MODULE, path, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module.ffi, module.lib


_ffi = _lib = None


class PayloadIndex:
    """What the C scanner found in one payload.

    Attributes:
        members (dict): top-level member name -> (offset, length) of its
            value; the last occurrence wins
        entries (list): per element of "events", a dict with timestamp,
            name (str), entry and context spans ((offset, length); context
            None when absent) and flags (FJ_ENTRY_* bits, csrc/fj_payload.h)
        id (int or None): the "id" member when it is an int64 integer
    """

    def __init__(self, members, entries, ident):
        self.members = members
        self.entries = entries
        self.id = ident


def flag(name):
    """The value of FJ_ENTRY_<name> (csrc/fj_payload.h)."""
    _ensure()
    return getattr(_lib, "FJ_ENTRY_" + name)


def _ensure():
    global _ffi, _lib
    if _lib is None:
        _ffi, _lib = _load()


def parse(payload):
    """Index a raw response payload (bytes) with the C scanner.

    Returns:
        PayloadIndex
    Raises:
        PayloadError: the payload is not valid JSON, or not a journal
            response (no "events" array, an entry without a numeric
            timestamp or a string name, ...)
    """
    from flux_journal.core import payload_error

    _ensure()
    index = _ffi.gc(_ffi.new("fj_payload_t *"), _lib.fj_payload_release)
    _lib.fj_payload_init(index)
    err = _ffi.new("fj_error_t *")
    if _lib.fj_payload_parse(index, payload, len(payload), err) != _lib.FJ_OK:
        raise payload_error(err)

    def text(span):
        return payload[span.off : span.off + span.len]

    members = {}
    for i in range(index.nmembers):
        m = index.members[i]
        members[json.loads(b'"' + text(m.key) + b'"')] = (m.value.off, m.value.len)
    entries = []
    for i in range(index.nentries):
        e = index.entries[i]
        has_ctx = e.flags & _lib.FJ_ENTRY_HAS_CONTEXT
        entries.append(
            {
                "timestamp": e.timestamp,
                "name": json.loads(b'"' + text(e.name) + b'"'),
                "entry": (e.entry.off, e.entry.len),
                "context": (e.context.off, e.context.len) if has_ctx else None,
                "flags": e.flags,
            }
        )
    ident = index.id if index.id_kind == _lib.FJ_ID_INT else None
    return PayloadIndex(members, entries, ident)


if __name__ == "__main__":
    print(build())
