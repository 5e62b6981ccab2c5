"""RFC 22 idsets and RFC 29 hostlists as Flux writes them.

Used by the simulator to write event contexts (``"idset":"1-3"``, R's
``nodelist``) and by :mod:`flux_journal.jobstate` to show a job's ranks
and nodelist as job-list does.  (Reading an idset:
:func:`flux_journal.metrics.resource.decode_idset`.)
"""

__all__ = ["encode_idset", "encode_hostlist", "decode_hostlist"]


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


def encode_idset(ids, brackets=False):
    """Encode integers as an RFC 22 idset string, e.g. ``[1, 2, 3, 5]`` -> ``"1-3,5"``.

    With *brackets*, a set of more than one id is bracketed
    (``"[1-3,5]"``), as job-list shows a job's ranks.
    """
    ids = sorted(set(ids))
    text = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in _ranges(ids))
    return f"[{text}]" if brackets and len(ids) > 1 else text


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


def decode_hostlist(text):
    """The host names of an RFC 29 hostlist (``node[0-3,07],login``), in order.

    Raises:
        ValueError: *text* is not a hostlist
    """
    hosts = []
    position = 0
    while position < len(text):
        comma = text.find(",", position)
        bracket = text.find("[", position)
        if bracket == -1 or (comma != -1 and comma < bracket):
            end = len(text) if comma == -1 else comma
            if end > position:
                hosts.append(text[position:end])
            position = end + 1
            continue
        close = text.find("]", bracket)
        if close == -1:
            raise ValueError(f"not a hostlist: {text!r}")
        end = text.find(",", close)
        end = len(text) if end == -1 else end
        prefix, suffix = text[position:bracket], text[close + 1 : end]
        for part in text[bracket + 1 : close].split(","):
            low, dash, high = part.partition("-")
            if not low.isdigit() or (dash and not high.isdigit()):
                raise ValueError(f"not a hostlist: {text!r}")
            for number in range(int(low), int(high if dash else low) + 1):
                hosts.append(f"{prefix}{number:0{len(low)}d}{suffix}")
        position = end + 1
    return hosts
