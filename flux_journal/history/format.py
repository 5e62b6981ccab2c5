"""``flux jobs``' output format language, for archived jobs.

A format is Python format syntax over ``flux jobs``' field names (see
:mod:`flux_journal.history.fields`), with ``flux jobs``' extensions:

* conversions ``!D`` (ISO 8601 local date/time, empty for an unset
  timestamp), ``!d`` (a datetime for ``strftime`` specs, with ``::`` before
  a width/alignment spec, e.g. ``{t_submit!d:%b%d %R::>12}``), ``!F``
  (Flux Standard Duration), ``!H`` (``H:MM:SS``, at least a second when
  not zero) and ``!P`` (a fraction as a percentage);
* the spec suffix ``h`` (an empty value, ``0s``, ``0.0``, ``0:00:00`` or the
  epoch prints as ``-``) and then ``+`` (a truncated value ends in ``+``);
* field prefixes ``?:`` (drop the column when it is empty for every job),
  ``+:`` (widen the column to its widest value and heading) and ``?+:``
  (both).

Headings are ``flux jobs``' (only the alignment and width of each spec
apply to them), and a line that formats to nothing but spaces is not
printed, as ``flux jobs`` does.

A format may begin with ``sort:KEY[,KEY...]`` (a ``-KEY`` sorts in
reverse): the listed jobs are then sorted by those fields, empty values
first, then numbers (numeric text included), then other text.  Without
one the jobs keep the archive query's order (see
:mod:`flux_journal.history.query`).  As with ``flux jobs``, sorting
applies to the jobs listed (after ``--count``), not to the whole archive.
"""

import re
import string
from datetime import datetime, timedelta

from flux_journal.history.fields import EmptyValue, JobFields, fsd, heading_of, is_field

__all__ = [
    "FORMATS",
    "DEFAULT_FORMAT",
    "JobFormat",
    "format_jobs",
    "parse_sort_keys",
    "resolve_format",
]

#: Named formats, as ``flux jobs -o NAME`` defines them.
FORMATS = {
    "default": (
        "{id.f58:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
        "{status_abbrev:>2.2} {ntasks:>6} {nnodes:>6h} "
        "{contextual_time!F:>8h} {contextual_info}"
    ),
    "cute": (
        "{id.f58:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
        "{status_emoji:>5.5} {ntasks:>6} {nnodes:>6h} "
        "{contextual_time!F:>8h} {contextual_info}"
    ),
    "long": (
        "{id.f58:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
        "{status:>9.9} {ntasks:>6} {nnodes:>6h} "
        "{t_submit!d:%b%d %R::>12} {t_remaining!F:>12h} "
        "{contextual_time!F:>8h} {contextual_info}"
    ),
    "deps": (
        "{id.f58:>12} ?:{queue:<8.8} {name:<10.10+} {urgency:<3} "
        "{priority:<12} {state:<8.8} {dependencies}"
    ),
    "endreason": (
        "{id.f58:>12} ?:{queue:<8.8} +:{username:<8} {name:<10.10+} "
        "{status_abbrev:>2.2} {t_inactive!d:%b%d %R::>12h} {inactive_reason}"
    ),
}
#: The format used when none is given.
DEFAULT_FORMAT = FORMATS["default"]

# A leading sort:KEYS prefix (keys end at a space or a field).
_SORT_PREFIX = re.compile(r"sort:([^{\s]+) ?")

# Sentinel prefixes, longest first so that "?+:" is not read as "+:".
_SENTINELS = (("?+:", "both"), ("?:", "drop"), ("+:", "widen"))

# A Python format spec split into parts, with flux's "h" and "+" suffixes.
_SPEC = re.compile(
    r"(?P<fill_align>(?:[\s\S])?[<>=^])?(?P<sign>[- +])?(?P<z>z)?(?P<alt>#)?"
    r"(?P<zero>0)?(?P<width>\d+)?(?P<grouping>[_,])?(?:\.(?P<precision>\d+))?"
    r"(?P<type>[bcdeEfFgGnosxX%])?(?P<hyphen>h)?(?P<truncate>\+)?"
)


def _empty_outputs():
    """Formatted values that count as empty (for ``h`` and ``?:``)."""
    epoch = datetime.fromtimestamp(0.0).strftime("%FT%T")
    return ("", "0s", "0.0", "0:00:00", "1970-01-01T00:00:00", epoch)


class _Datetime(datetime):
    """A timestamp converted by ``!d``: a ``strftime`` spec, then after
    ``::`` a width/alignment spec; the epoch (an unset timestamp) prints
    as nothing (``-`` with the ``h`` suffix)."""

    def __format__(self, spec):
        timefmt, _, rest = spec.partition("::")
        if self == datetime.fromtimestamp(0.0):
            text = ""
        else:
            text = self.strftime(timefmt or "%FT%T")
        if rest.endswith("h"):
            text = text or "-"
            rest = rest[:-1] + "s"
        return format(text, rest) if rest else text


def _unset(value):
    """Whether *value* is unset for a conversion: an empty string or an
    annotation that is not set."""
    return isinstance(value, EmptyValue) or (isinstance(value, str) and value == "")


def _convert_time(value, convert):
    if _unset(value):
        return ""
    if isinstance(value, (int, float)):
        return convert(value)
    raise ValueError(f"not a number: {value!r}")


def _to_iso(value):
    return datetime.fromtimestamp(value).strftime("%FT%T") if value else ""


def _to_hms(value):
    # a nonzero duration shows as at least one second, never 0:00:00
    if 0 < value < 1:
        value = 1
    return str(timedelta(seconds=round(value)))


def _to_percent(value):
    percent = value * 100
    if 0 < percent < 1:
        return f"{percent:.2f}%"
    return f"{percent:.3g}%"


class _Formatter(string.Formatter):
    """Formats one job's fields: the field name is looked up whole (dots
    name fields, not attributes), then flux jobs' conversions and spec
    suffixes apply."""

    def __init__(self):
        self.empty = _empty_outputs()

    def get_field(self, field_name, args, kwargs):
        return kwargs["job"].get(field_name), field_name

    def convert_field(self, value, conversion):
        if conversion == "d":
            if _unset(value):
                return _Datetime.fromtimestamp(0.0)
            if not isinstance(value, (int, float)):
                raise ValueError(f"not a timestamp: {value!r}")
            return _Datetime.fromtimestamp(value)
        if conversion == "D":
            return "" if not value else _convert_time(value, _to_iso)
        if conversion == "F":
            return _convert_time(value, fsd)
        if conversion == "H":
            return _convert_time(value, _to_hms)
        if conversion == "P":
            return _convert_time(value, _to_percent)
        return super().convert_field(value, conversion)

    def format_field(self, value, format_spec):
        mark_truncation = format_spec.endswith("+")
        if mark_truncation:
            format_spec = format_spec[:-1]
        # a !d value handles "h" itself, after its strftime spec
        if format_spec.endswith("h") and not isinstance(value, _Datetime):
            value = str(value)
            if value in self.empty:
                value = "-"
            format_spec = format_spec[:-1] + "s"
        text = super().format_field(value, format_spec)
        if mark_truncation and len(text) < len(str(value)):
            text = text[:-1] + "+"
        return text


class _Spec:
    """A format spec whose width can be changed (for ``+:``), keeping a
    ``!d`` strftime part before ``::``."""

    def __init__(self, spec):
        self.prefix, sep, tail = spec.rpartition("::")
        self.prefix += sep
        match = _SPEC.fullmatch(tail)
        self.parts = match.groupdict() if match else None
        self.tail = tail

    @property
    def width(self):
        """The spec's minimum width (0 when it has none)."""
        return int(self.parts["width"] or 0) if self.parts else 0

    def align_width(self):
        """Only the alignment and width: what a heading keeps."""
        if not self.parts:
            return ""
        return (self.parts["fill_align"] or "") + (self.parts["width"] or "")

    def widened(self, width):
        """The spec with its width set to *width* (a string precision
        shorter than that grows with it, so the widest value fits)."""
        if not self.parts:
            return self.prefix + self.tail
        parts = dict(self.parts)
        parts["width"] = str(width)
        precision = parts["precision"]
        if parts["type"] in (None, "s") and precision and int(precision) < width:
            parts["precision"] = str(width)
        order = ("fill_align", "sign", "z", "alt", "zero", "width", "grouping")
        text = "".join(parts[key] or "" for key in order)
        if parts["precision"]:
            text += "." + parts["precision"]
        text += "".join(parts[key] or "" for key in ("type", "hyphen", "truncate"))
        return self.prefix + text


class JobFormat:
    """A parsed ``flux jobs`` format.

    Args:
        fmt (str): the format string

    Attributes:
        sort_keys (list): (field, reverse) pairs of a ``sort:`` prefix

    Raises:
        ValueError: a field ``flux jobs`` does not know, or a format
            Python cannot parse
    """

    def __init__(self, fmt):
        self.sort_keys = []
        match = _SORT_PREFIX.match(fmt)
        if match:
            self.sort_keys = parse_sort_keys(match.group(1))
            fmt = fmt[match.end() :]
        # [literal text, field or None, spec, conversion or None]
        self.entries = [
            [text, field, spec or "", conversion]
            for text, field, spec, conversion in string.Formatter().parse(fmt)
        ]
        for _, field, _, _ in self.entries:
            if field is not None and not is_field(field):
                raise ValueError(f"Unknown format field: {field}")
        self.formatter = _Formatter()

    def resolved(self, jobs, header=True):
        """This format for printing *jobs* (a list of JobFields): ``?:``
        columns dropped when empty for every job, ``+:`` columns widened
        to their widest value (or heading, when *header*); no sentinels
        remain."""
        entries = []
        for text, field, spec, conversion in self.entries:
            kind = None
            for sentinel, name in _SENTINELS:
                if field is not None and text.endswith(sentinel):
                    kind = name
                    text = text[: -len(sentinel)]
                    break
            if kind is None:
                entries.append([text, field, spec, conversion])
                continue
            parsed = _Spec(spec)
            bare = "{" + field + ("!" + conversion if conversion else "") + "}"
            empty = self.formatter.empty
            widest = max(
                (
                    len(value)
                    for value in (self.formatter.format(bare, job=job) for job in jobs)
                    if value not in empty
                ),
                default=0,
            )
            if widest == 0 and kind in ("drop", "both"):
                continue
            if kind in ("widen", "both"):
                heading = len(heading_of(field)) if header else 0
                width = max(parsed.width, heading, widest)
                spec = parsed.widened(width)
            entries.append([text, field, spec, conversion])
        resolved = JobFormat.__new__(JobFormat)
        resolved.entries = entries
        resolved.formatter = self.formatter
        resolved.sort_keys = self.sort_keys
        return resolved

    def sort(self, jobs):
        """Sort *jobs* (a list of JobFields) in place by the format's sort
        keys, the first key deciding first."""
        for name, reverse in reversed(self.sort_keys):
            jobs.sort(key=lambda job, name=name: _sort_value(job.get(name)), reverse=reverse)

    def header(self):
        """The heading line."""
        parts = []
        for text, field, spec, _ in self.entries:
            parts.append(text)
            if field is not None:
                parts.append(format(heading_of(field), _Spec(spec).align_width()))
        return "".join(parts)

    def line(self, job):
        """One job (JobFields) as a line of text (without newline)."""
        parts = []
        formatter = self.formatter
        for text, field, spec, conversion in self.entries:
            parts.append(text)
            if field is None:
                continue
            value = job.get(field)
            if conversion:
                value = formatter.convert_field(value, conversion)
            parts.append(formatter.format_field(value, spec))
        return "".join(parts)


def parse_sort_keys(text):
    """[(field, reverse)] of ``KEY[,-KEY...]`` (``sort:`` or ``--sort``)."""
    keys = []
    for key in text.split(","):
        key = key.strip()
        if not key:
            continue
        reverse = key.startswith("-")
        key = key[1:] if reverse else key
        if not is_field(key):
            raise ValueError(f"Invalid sort key: {key}")
        keys.append((key, reverse))
    return keys


def _sort_value(value):
    """Where *value* sorts: unset ("", "-", an unset annotation) before
    numbers (booleans, and text that reads as one), before other text."""
    if isinstance(value, EmptyValue) or value is None or value in ("", "-"):
        return (0, 0)
    if isinstance(value, (bool, int, float)):
        return (1, float(value))
    try:
        return (1, float(str(value)))
    except ValueError:
        return (2, str(value))


def resolve_format(name_or_format):
    """The format string for ``-o``: a named format or the string itself."""
    return FORMATS.get(name_or_format, name_or_format)


def format_jobs(records, fmt=DEFAULT_FORMAT, *, now, header=True, sort=None):
    """Return the lines (without newlines) that print *records* (archived
    jobs as ``flux jobs --json`` dicts) in format *fmt*, headed unless
    *header* is false, with times computed at *now*, sorted by *sort*
    (``KEY[,-KEY]``, in place of the format's ``sort:`` keys) if given."""
    jobs = [JobFields(record, now) for record in records]
    parsed = JobFormat(fmt)
    if sort is not None:
        parsed.sort_keys = parse_sort_keys(sort)
    parsed.sort(jobs)
    resolved = parsed.resolved(jobs, header)
    lines = [resolved.header()] if header else []
    for job in jobs:
        line = resolved.line(job)
        if line and not line.isspace():
            lines.append(line)
    return lines
