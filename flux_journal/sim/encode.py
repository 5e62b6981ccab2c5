"""JSON text exactly as a Flux broker writes it.

Flux services build their responses with jansson and send them compact
(``JSON_COMPACT``), with object members in insertion order and non-ASCII
characters left as UTF-8.  The one place where Python's ``json`` module
disagrees with jansson is real numbers: jansson prints them with
``"%.17g"`` (so ``0.3`` becomes ``0.29999999999999999`` and a timestamp may
carry a 17th digit that Python's shortest repr would drop), appends ``.0``
to integral values and trims the exponent.  Every captured fixture line
re-encodes byte for byte with :func:`dumps`, which is what lets the
simulator produce streams indistinguishable from the real ones.

RFC 22 idsets and hostlists in contexts (``"idset":"1-3"``) are written
by :mod:`flux_journal.idsets`, re-exported here.  (Job ids in contexts
are F58, from :func:`flux_journal.jobid.f58_utf8`.)
"""

import json
import math

from flux_journal.idsets import encode_hostlist, encode_idset

__all__ = ["format_real", "dumps", "render_entry", "encode_idset", "encode_hostlist"]

# The C-accelerated string escaper json.dumps uses with ensure_ascii=False;
# its escapes match jansson's (control characters, quote, backslash).
_encode_string = json.encoder.encode_basestring


def format_real(value):
    """Return the text jansson writes for the float *value*.

    Raises ValueError for NaN and infinities, which jansson refuses to
    encode as well.
    """
    text = "%.17g" % value
    if "e" in text:
        # jansson drops the "+" and any leading zeros of the exponent.
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else ""
        digits = exponent.lstrip("+-").lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits}"
    if "." in text:
        return text
    if not math.isfinite(value):
        raise ValueError(f"JSON cannot represent {value!r}")
    # Without a dot the value would decode as an integer.
    return text + ".0"


def dumps(obj):
    """Serialize *obj* compactly, the way a Flux broker would.

    Handles dicts (string keys, insertion order), lists and tuples,
    strings, booleans, integers, floats and None.  Slower than
    ``json.dumps`` (it is plain Python), so bulk generators use
    pre-rendered templates and only call this for the odd object.
    """
    parts = []
    _encode_into(obj, parts.append)
    return "".join(parts)


def render_entry(timestamp, name, context=None):
    """One eventlog entry as the broker writes it; *context* is a dict, JSON
    text, or None for an entry without a context member."""
    entry = '{"timestamp":%s,"name":%s' % (format_real(float(timestamp)), dumps(name))
    if context is not None:
        entry += ',"context":' + (context if isinstance(context, str) else dumps(context))
    return entry + "}"


def _encode_into(obj, emit):
    # Exact type checks first: bool is a subclass of int, and the common
    # cases should not pay for isinstance chains.
    kind = type(obj)
    if kind is str:
        emit(_encode_string(obj))
    elif obj is None:
        emit("null")
    elif obj is True:
        emit("true")
    elif obj is False:
        emit("false")
    elif kind is int:
        emit(str(obj))
    elif kind is float:
        emit(format_real(obj))
    elif isinstance(obj, dict):
        emit("{")
        first = True
        for key, value in obj.items():
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be str, not {type(key)}")
            if not first:
                emit(",")
            first = False
            emit(_encode_string(key))
            emit(":")
            _encode_into(value, emit)
        emit("}")
    elif isinstance(obj, (list, tuple)):
        emit("[")
        for index, value in enumerate(obj):
            if index:
                emit(",")
            _encode_into(value, emit)
        emit("]")
    elif isinstance(obj, str):
        emit(_encode_string(str(obj)))
    elif isinstance(obj, int):
        emit(str(int(obj)))
    elif isinstance(obj, float):
        emit(format_real(float(obj)))
    else:
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
