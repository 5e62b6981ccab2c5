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

Also here: RFC 22 idsets and hostlists, used to write event contexts
such as ``"idset":"1-3"``.  (Job ids in contexts are F58, from
:func:`flux_journal.jobid.f58_utf8`.)
"""

import json
import math

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


def _ranges(numbers):
    """Yield (first, last) runs of consecutive integers in sorted *numbers*."""
    run_start = prev = None
    for num in numbers:
        if prev is not None and num == prev + 1:
            prev = num
            continue
        if run_start is not None:
            yield run_start, prev
        run_start = prev = num
    if run_start is not None:
        yield run_start, prev


def encode_idset(ids):
    """Encode integers as an RFC 22 idset string, e.g. ``[1, 2, 3, 5]`` -> ``"1-3,5"``."""
    return ",".join(
        str(a) if a == b else f"{a}-{b}" for a, b in _ranges(sorted(set(ids)))
    )


def encode_hostlist(hosts):
    """Encode host names as a compact RFC 29 hostlist string.

    Names sharing a prefix and differing in a numeric suffix are bracketed
    (``node[0-3,7]``); repeated identical names stay repeated (``vm,vm``),
    as flux does for single-host test instances.
    """
    out = []
    index = 0
    hosts = list(hosts)
    while index < len(hosts):
        prefix, number, width = _split_host(hosts[index])
        if number is None:
            out.append(hosts[index])
            index += 1
            continue
        group = [number]
        index += 1
        while index < len(hosts):
            nprefix, nnumber, nwidth = _split_host(hosts[index])
            if nprefix != prefix or nnumber is None:
                break
            # A zero-padded run (n01, n02) may continue with n10, whose
            # digits are as wide as the padding; otherwise widths must agree.
            if nwidth != width and not (width and len(str(nnumber)) == width):
                break
            if nnumber <= group[-1]:
                break
            group.append(nnumber)
            index += 1
        if len(group) == 1:
            out.append(f"{prefix}{group[0]:0{width}d}")
        else:
            spans = ",".join(
                f"{a:0{width}d}" if a == b else f"{a:0{width}d}-{b:0{width}d}"
                for a, b in _ranges(group)
            )
            out.append(f"{prefix}[{spans}]")
    return ",".join(out)


def _split_host(name):
    """Split ``node012`` into (``node``, 12, 3); (name, None, 0) if no digits."""
    end = len(name)
    start = end
    while start > 0 and name[start - 1].isdigit():
        start -= 1
    if start == end:
        return name, None, 0
    digits = name[start:]
    # Zero-padded suffixes keep their width so node01..node10 round-trips.
    width = len(digits) if digits.startswith("0") and len(digits) > 1 else 0
    return name[:start], int(digits), width
