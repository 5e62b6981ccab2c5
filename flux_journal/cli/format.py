"""Turning journal events into lines of text or JSON for ``flux-journal``.

Text lines follow the conventions of flux-core's eventlog formatter (as
used by ``flux job eventlog``): a timestamp, the event name, then the
context as ``key=value`` pairs whose values are compact JSON; job events
get the job id in F58 between timestamp and name.  Timestamps can be
printed ``raw`` (seconds since the epoch), ``iso`` (RFC 3339, local time),
``offset`` (seconds since the first event printed) or ``human`` (a
``[Mon DD HH:MM]`` break at each new minute, then ``[+seconds]`` since the
break), and colours follow the same scheme (time green, name yellow,
exception bold red, keys blue, numbers grey, other values magenta).

JSON lines are one compact object per event, UTF-8, for jq, log shippers
and message queues::

    {"timestamp":1795812829.7204976,"name":"submit","context":{...},
     "jobid":13623099393,"jobspec":{...}}

``context`` is always present (``{}`` when the event had none), ``jobid``
is an integer on job events, ``jobspec`` appears on ``submit`` events and
``R`` on ``alloc`` (or, for the resource journal, ``resource-define``)
events when the journal sent them.  Timestamps keep every bit of the
double the service sent.
"""

import json
import os
from datetime import datetime, timezone

import orjson

__all__ = [
    "TIME_FORMATS",
    "COLOR_CHOICES",
    "JsonFormatter",
    "TextFormatter",
    "TimestampFormatter",
    "make_formatter",
    "use_color",
]

#: Accepted ``--time-format`` values.
TIME_FORMATS = ("raw", "iso", "offset", "human")
#: Accepted ``--color`` values.
COLOR_CHOICES = ("auto", "always", "never")

_RESET = "\033[0m"
# Colour per part of a line.  The scheme is flux's eventlog formatter's, so
# the journal looks like `flux job eventlog` output; job ids (which that
# formatter never prints) get cyan so they stand apart from the name.
_COLORS = {
    "time": "\033[32m",
    "timebreak": "\033[1m\033[32m",
    "jobid": "\033[36m",
    "instance": "\033[1m\033[36m",
    "name": "\033[33m",
    "exception": "\033[1m\033[31m",
    "key": "\033[34m",
    "value": "\033[35m",
    "number": "\033[37m",
}


def use_color(choice, stream):
    """Decide whether to colour output written to *stream*.

    *choice* is ``always``, ``never`` or ``auto``; ``auto`` colours only a
    terminal, and honours the NO_COLOR convention (https://no-color.org)
    and TERM=dumb, because piping or logging escape codes helps no one.
    """
    if choice == "always":
        return True
    if choice == "never":
        return False
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _dumps_value(value):
    """A JSON value as compact text, non-ASCII kept as is (like
    ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``)."""
    kind = type(value)
    if kind is int:
        return str(value)
    if kind is float:
        # json.dumps writes floats with repr(); orjson's shortest form can
        # differ in exponent style (1e16 vs 1e+16), so match json exactly.
        return json.dumps(value)
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        # ints beyond 64 bits, which orjson refuses but JSON allows
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class TimestampFormatter:
    """Renders event timestamps in one of :data:`TIME_FORMATS`.

    Stateful: ``offset`` counts from the first timestamp formatted and
    ``human`` prints a full date/time only when a new minute starts (or
    the previous break is a minute or more behind), like flux's eventlog
    formatter.

    Args:
        kind (str): raw, iso, offset or human
        color (bool): wrap the text in the time colour
    """

    def __init__(self, kind="raw", color=False):
        if kind not in TIME_FORMATS:
            choices = ", ".join(TIME_FORMATS)
            raise ValueError(f"invalid time format {kind!r}: choose from {choices}")
        self.kind = kind
        self.color = color
        self._t0 = None
        self._break = None  # (timestamp, datetime) of the last [date] break
        self._render = getattr(self, f"_{kind}")

    def __call__(self, ts):
        """Return the text for timestamp *ts* (seconds since the epoch)."""
        if self._t0 is None:
            self._t0 = ts
        text, part = self._render(ts)
        if self.color:
            return _COLORS[part] + text + _RESET
        return text

    @staticmethod
    def _raw(ts):
        return f"{ts:11.6f}", "time"

    def _offset(self, ts):
        return f"{ts - self._t0:15.6f}", "time"

    @staticmethod
    def _iso(ts):
        # One conversion gives date, time and microseconds together, so a
        # timestamp rounding up to the next second never prints
        # inconsistent fields.
        local = datetime.fromtimestamp(ts, timezone.utc).astimezone()
        offset = local.utcoffset()
        if not offset:
            zone = "Z"
        else:
            minutes = int(offset.total_seconds()) // 60
            sign = "+" if minutes >= 0 else "-"
            zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}" + zone, "time"

    def _human(self, ts):
        previous = self._break
        if previous is not None:
            delta = ts - previous[0]
            if 0 <= delta < 60:
                return f"[{delta:>+11.6f}]", "time"
        # A new minute (or time went backwards, which live streams of
        # several jobs can do): print a break the following lines count
        # from.
        local = datetime.fromtimestamp(ts).astimezone()
        self._break = (ts, local)
        return local.strftime("[%b%d %H:%M]"), "timebreak"


class TextFormatter:
    """Formats events as eventlog-style text lines.

    Args:
        time_format (str): one of :data:`TIME_FORMATS`
        color (bool): emit ANSI colours
        jobs (bool): events carry a job id (job-manager journal), printed
            in F58 after the timestamp
    """

    def __init__(self, time_format="raw", color=False, jobs=True, instances=False):
        self.color = color
        self.jobs = jobs
        self.instances = instances
        self.timestamp = TimestampFormatter(time_format, color)

    def _paint(self, part, text):
        return _COLORS[part] + text + _RESET if self.color else text

    def line(self, event):
        """Return one event as a line of text (with its newline)."""
        parts = [self.timestamp(event.timestamp)]
        if self.jobs:
            parts.append(self._paint("jobid", event.jobid.f58))
        name = event.name
        parts.append(self._paint("exception" if name == "exception" else "name", name))
        context = event.context
        if context and not isinstance(context, dict):
            # not an object (RFC 18 says it must be): show it whole
            parts.append(f"context={_dumps_value(context)}")
        elif context:
            color = self.color
            for key, value in context.items():
                text = _dumps_value(value)
                if color:
                    part = "number" if type(value) in (int, float) else "value"
                    parts.append(
                        f"{_COLORS['key']}{key}{_RESET}={_COLORS[part]}{text}{_RESET}"
                    )
                else:
                    parts.append(f"{key}={text}")
        return " ".join(parts) + "\n"

    def format(self, events):
        """Return the UTF-8 bytes of *events*, one line each."""
        line = self.line
        if self.instances:
            paint = self._paint
            text = "".join([f"{paint('instance', instance)} {line(event)}"
                            for instance, event in events])
        else:
            text = "".join([line(event) for event in events])
        # Lone surrogates (a context with an escaped "\ud800") cannot be
        # UTF-8: show them escaped rather than fail the whole batch.
        return text.encode("utf-8", "backslashreplace")


class JsonFormatter:
    """Formats events as JSON Lines (see the module docstring).

    Args:
        jobs (bool): events carry a job id (job-manager journal)
    """

    def __init__(self, jobs=True, instances=False):
        self.jobs = jobs
        self.instances = instances

    def record(self, event, instance=None):
        """Return the dict written for *event* (of the instance at path
        *instance*, if given)."""
        record = {
            "timestamp": event.timestamp,
            "name": event.name,
            "context": event.context,
        }
        if self.jobs:
            record["jobid"] = int(event.jobid)
            if event.jobspec is not None:
                record["jobspec"] = event.jobspec
        R = getattr(event, "R", None)
        if R is not None:
            record["R"] = R
        if instance is not None:
            record["instance"] = instance
        return record

    def line(self, event, instance=None):
        """Return one event as a JSON line (bytes, with its newline)."""
        record = self.record(event, instance)
        try:
            return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        except (TypeError, orjson.JSONEncodeError):
            # Integers beyond 64 bits (valid JSON orjson refuses) or
            # values json decoded as inf: let json write them.
            text = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
            try:
                return (text + "\n").encode("utf-8")
            except UnicodeEncodeError:
                # lone surrogates: \uXXXX escapes keep the line valid JSON
                text = json.dumps(record, separators=(",", ":"))
                return (text + "\n").encode("ascii")

    def format(self, events):
        """Return the UTF-8 bytes of *events*, one JSON line each."""
        line = self.line
        if self.instances:
            return b"".join([line(event, instance) for instance, event in events])
        return b"".join([line(event) for event in events])


def make_formatter(fmt, *, time_format="raw", color=False, jobs=True, instances=False):
    """Return a formatter for ``--format`` *fmt* (``text`` or ``json``).

    *time_format* and *color* only apply to text.  With *instances*
    (``--recursive``), the formatter takes (instance path, event) pairs
    and shows the path: a text line starts with it, a JSON line has it
    as ``instance``.
    """
    if fmt == "json":
        return JsonFormatter(jobs=jobs, instances=instances)
    if fmt == "text":
        return TextFormatter(time_format, color, jobs=jobs, instances=instances)
    raise ValueError(f"invalid format {fmt!r}: choose text or json")
