"""What ``flux-journal metrics`` should report, worked out from raw payloads.

An independent computation for the metrics tests: it reads the journal
responses with the json module (not flux-journal's C core) and judges
each job from its whole life at once (not event by event, as the
exporter does), following flux-core's job-list rules as documented in
flux_journal/metrics/state.py's docstring.
"""

import json
from collections import Counter, defaultdict

STATES = ("NEW", "DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP", "INACTIVE")
RESULTS = ("COMPLETED", "FAILED", "CANCELED", "TIMEOUT")
_REVERTS = ("urgency", "jobspec-update", "flux-restart")


def read_lines(path):
    """The payload lines of a capture file."""
    with open(path, encoding="utf-8") as capture:
        return [line.rstrip("\n") for line in capture if line.strip()]


def _responses(lines):
    for line in lines:
        try:
            response = json.loads(line)
        except ValueError:
            continue
        if isinstance(response, dict) and isinstance(response.get("events"), list):
            yield response


def job_lives(lines):
    """{jobid: [(timestamp, name, context), ...]} in each job's order."""
    lives = defaultdict(list)
    for response in _responses(lines):
        for entry in response["events"]:
            lives[response["id"]].append(
                (entry["timestamp"], entry["name"], entry.get("context", {}))
            )
    lives.pop(-1, None)
    return lives


def _fatal(context):
    return context.get("severity") == 0


def job_state(life):
    """The state a job is in after its events, or None if invalidated."""
    names = [name for _, name, _ in life]
    if "invalidate" in names:
        return None
    if "clean" in names:
        return "INACTIVE"
    if "finish" in names or any(n == "exception" and _fatal(c) for _, n, c in life):
        return "CLEANUP"
    if "alloc" in names:
        return "RUN"
    if "depend" in names:
        # After depend, PRIORITY; a priority event schedules the job, a
        # revert event sends a scheduled job back: so the job is in SCHED
        # when a priority event comes after the last depend or revert.
        last_back = max(i for i, n in enumerate(names) if n == "depend" or n in _REVERTS)
        return "SCHED" if "priority" in names[last_back:] else "PRIORITY"
    if "validate" in names:
        return "DEPEND"
    return "NEW"


def job_result(life):
    """COMPLETED/FAILED/CANCELED/TIMEOUT for a job that reached clean."""
    finish = next((i for i, (_, n, _c) in enumerate(life) if n == "finish"), None)
    exceptions = [(c["severity"], c["type"]) for _, n, c in life if n == "exception"]
    fatal_before_finish = finish is not None and any(
        n == "exception" and _fatal(c) for _, n, c in life[:finish]
    )
    if finish is not None and life[finish][2]["status"] == 0 and not fatal_before_finish:
        return "COMPLETED"
    if exceptions:
        worst = min(severity for severity, _ in exceptions)
        kind = next(k for severity, k in exceptions if severity == worst)
        return {"cancel": "CANCELED", "timeout": "TIMEOUT"}.get(kind, "FAILED")
    return "FAILED"


def _first(life, name):
    return next((ts for ts, n, _ in life if n == name), None)


def expected_jobs(lines):
    """The job metrics: events per name, jobs per state, results, and the
    queue and run durations."""
    lives = job_lives(lines)
    states = Counter()
    results = Counter()
    queue, run = [], []
    for life in lives.values():
        state = job_state(life)
        if state is None:
            continue
        states[state] += 1
        if state == "INACTIVE":
            results[job_result(life)] += 1
        submit, alloc = _first(life, "submit"), _first(life, "alloc")
        if alloc is not None:
            queue.append(alloc - submit)
        start, finish = _first(life, "start"), _first(life, "finish")
        if start is not None and finish is not None:
            run.append(finish - start)
    events = Counter(name for life in lives.values() for _, name, _ in life)
    return {
        "events": dict(events),
        "states": {state: states[state] for state in STATES},
        "results": {result: results[result] for result in RESULTS},
        "queue": queue,
        "run": run,
    }


def _idset(text):
    ranks = set()
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        ranks.update(range(int(low), int(high or low) + 1))
    return ranks


def expected_resource(lines):
    """The resource metrics: events per name and ranks per state."""
    events = [e for r in _responses(lines) for e in r["events"]]
    events.sort(key=lambda e: e["timestamp"])
    everyone, online, drained, torpid = set(), set(), set(), set()
    for event in events:
        context = event.get("context", {})
        if event["name"] == "restart":
            everyone = _idset(context["ranks"])
            online = _idset(context["online"])
            torpid = set()
            continue
        if "idset" not in context:
            continue
        ids = _idset(context["idset"])
        everyone |= ids
        {
            "online": online.update,
            "offline": lambda ids: (online.difference_update(ids), torpid.difference_update(ids)),
            "drain": drained.update,
            "undrain": drained.difference_update,
            "torpid": torpid.update,
            "lively": torpid.difference_update,
        }.get(event["name"], lambda ids: None)(ids)
    return {
        "events": dict(Counter(e["name"] for e in events)),
        "ranks": {
            "online": len(online),
            "offline": len(everyone - online),
            "drained": len(drained),
            "torpid": len(torpid),
        },
    }
