"""flux-journal history's filters: option parsing, and the SQL they render
(both placeholder styles) run against SQLite archives of real job records."""

import json
import pwd
import re
import sqlite3

import pytest

from history_helpers import load_jobs, write_archive
from flux_journal.history.query import (
    JobQuery,
    QueryError,
    parse_duration,
    parse_filter,
    parse_jobid,
    parse_list,
    parse_user,
    parse_when,
)
from flux_journal.history.reader import open_reader
from flux_journal.job import JobID
from flux_journal.store.schema import SPAN

JOBS = load_jobs()
NOW = 1796400700.0


def alice(record):
    """*record* as if alice (uid 1000) had submitted it."""
    return dict(record, userid=1000, username="alice")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Instance "a": the captured jobs, the odd ones alice's; instance "b":
    the first five again (same ids, another instance)."""
    path = str(tmp_path_factory.mktemp("history") / "archive.sqlite")
    write_archive(path, [alice(r) if i % 2 else r for i, r in enumerate(JOBS)], instance="a")
    write_archive(path, JOBS[:5], instance="b")
    return path


def select(path, query, placeholder="?"):
    """[(instance, id)] of the jobs *query* selects, read as the history
    reader reads them (its statements one after the other, at most one
    more row than the count), rendered with *placeholder* (a %s
    rendering is run with sqlite3's ? marks)."""
    db = sqlite3.connect(path)
    rows = []
    for sql, params in query.jobs_statements(placeholder):
        if placeholder == "%s":
            assert "?" not in sql
            sql = sql.replace("%s", "?")
        rows.extend(db.execute(sql, params).fetchall())
    db.close()
    if query.count is not None:
        rows = rows[:query.count + 1]
    return [(instance, json.loads(record)["id"]) for instance, record in rows]


def ids(rows, instance="a"):
    return [jobid for inst, jobid in rows if inst == instance]


def expected(predicate):
    return [r["id"] for r in JOBS if predicate(r)]


@pytest.mark.parametrize("placeholder", ["?", "%s"])
def test_order_is_flux_jobs_order(archive, placeholder):
    # jobs.json is in flux jobs' (job-list's) order: pending by priority
    # then id, running by start, inactive latest first
    rows = select(archive, JobQuery(instances=("a",)), placeholder)
    assert ids(rows) == [r["id"] for r in JOBS]


@pytest.mark.parametrize("placeholder", ["?", "%s"])
def test_filters(archive, placeholder):
    def run(**kwargs):
        return ids(select(archive, JobQuery(instances=("a",), **kwargs), placeholder))

    assert run(userid=1000) == [r["id"] for i, r in enumerate(JOBS) if i % 2]
    assert run(username="alice") == run(userid=1000)
    assert run(userid=0) == [r["id"] for i, r in enumerate(JOBS) if not i % 2]
    states, results = parse_filter("pending")
    assert run(states=states, results=results) == expected(
        lambda r: r["state"] in ("SCHED", "DEPEND"))
    states, results = parse_filter("Failed,CANCELED")
    assert run(states=states, results=results) == expected(
        lambda r: r.get("result") in ("FAILED", "CANCELED"))
    states, results = parse_filter("depend,timeout")
    assert run(states=states, results=results) == expected(
        lambda r: r["state"] == "DEPEND" or r.get("result") == "TIMEOUT")
    assert run(names=("sh",)) == expected(lambda r: r["name"] == "sh")
    assert run(queues=("debug",)) == expected(lambda r: r["queue"] == "debug")
    wanted = (JOBS[3]["id"], JOBS[7]["id"])
    assert run(jobids=wanted) == [JOBS[3]["id"], JOBS[7]["id"]]
    assert run(count=3) == [r["id"] for r in JOBS[:4]]  # one more: truncation


@pytest.mark.parametrize("placeholder", ["?", "%s"])
def test_a_count_lists_the_first_jobs_of_the_whole_listing(archive, placeholder):
    """With a count the active and the inactive jobs are asked for apart
    (so an index can serve the inactive ones' order): the listing is
    still the whole listing's first jobs, whatever the count and filters."""
    pending_or_running = sum(r["state"] != "INACTIVE" for r in JOBS)
    assert 0 < pending_or_running < len(JOBS)  # both parts hold jobs
    states, results = parse_filter("sched,failed,canceled")
    for filters in ({}, {"userid": 1000}, {"states": states, "results": results},
                    {"results": results}, {"since": NOW - 10 ** 6}):
        whole = select(archive, JobQuery(instances=("a",), **filters), placeholder)
        for count in range(1, len(whole) + 2):
            listed = select(archive, JobQuery(instances=("a",), count=count, **filters),
                            placeholder)
            assert listed == whole[:count + 1], (filters, count)


def test_time_window(archive):
    inactive = sorted(r["t_inactive"] for r in JOBS if "t_inactive" in r)
    middle = inactive[len(inactive) // 2]
    rows = ids(select(archive, JobQuery(instances=("a",), since=middle)))
    # still active, or ended after --since
    assert rows == expected(lambda r: r.get("t_inactive", float("inf")) > middle)
    submitted = sorted(r["t_submit"] for r in JOBS)[5]
    rows = ids(select(archive, JobQuery(instances=("a",), until=submitted)))
    assert rows == expected(lambda r: r["t_submit"] <= submitted) and len(rows) == 6


def test_instances(archive):
    assert ids(select(archive, JobQuery(instances=("b",))), "b") == [r["id"] for r in JOBS[:5]]
    both = select(archive, JobQuery(jobids=(JOBS[0]["id"],)))
    assert both == [("a", JOBS[0]["id"]), ("b", JOBS[0]["id"])]
    assert select(archive, JobQuery(instances=("c",))) == []


def test_nested_instances_match_by_exact_prefix(tmp_path):
    """nested: an instance and those under it ("NAME/..."), not names that
    only start alike, differ in case, or match as LIKE patterns."""
    path = str(tmp_path / "nested.sqlite")
    names = ["a", "a/ƒ1", "a/ƒ1/ƒ2", "ab", "A/ƒ3", "a%", "a%/ƒ4", "a_/ƒ5"]
    for name in names:
        write_archive(path, JOBS[:1], instance=name)

    def nested(*instances):
        return sorted(inst for inst, _ in select(path, JobQuery(instances=instances, nested=True)))

    assert nested("a") == ["a", "a/ƒ1", "a/ƒ1/ƒ2"]
    assert nested("a/ƒ1") == ["a/ƒ1", "a/ƒ1/ƒ2"]
    assert nested("a%") == ["a%", "a%/ƒ4"]
    assert nested("ab", "A") == ["A/ƒ3", "ab"]


def test_user_input_is_never_sql(archive):
    hostile = "x' OR '1'='1"
    query = JobQuery(names=(hostile,), queues=(hostile,), username=hostile, instances=(hostile,))
    for count in (None, 5):
        for placeholder in ("?", "%s"):
            counted = JobQuery(**{**query.__dict__, "count": count})
            for sql, params in counted.jobs_statements(placeholder):
                assert hostile not in sql and params.count(hostile) == 4
    assert select(archive, query) == []


def test_placeholder_styles_render_the_same_statement():
    query = JobQuery(userid=5, states=frozenset({"RUN"}), results=frozenset({"FAILED"}),
                     since=1.0, until=2.0, names=("n",), queues=("q",), instances=("i",),
                     jobids=(1, 2), count=10)
    for render in (query.jobs_statements, lambda mark: [query.events_sql(mark)],
                   lambda mark: query.events_statements([("i", 1), ("j", 2)], mark),
                   JobQuery(instances=("i", "j/ƒ2"), nested=True).jobs_statements):
        for (sql_q, params_q), (sql_s, params_s) in zip(render("?"), render("%s")):
            assert sql_s.replace("%s", "?") == sql_q and params_s == params_q
            assert sql_q.count("?") == len(params_q)
    assert JobQuery().where() == ("", [])


def test_events_of_selected_jobs(tmp_path):
    path = str(tmp_path / "a.sqlite")
    first, second = JOBS[-1], JOBS[-2]
    write_archive(path, [first, second], events=[
        (first["id"], 0, 10.0, "submit", {"urgency": 16}),
        (first["id"], 1, 12.0, "clean", {}),
        (second["id"], 0, 11.0, "submit", {"urgency": 16}),
    ], instance="a")
    reader = open_reader(path)
    events = list(reader.events(JobQuery()))
    assert [(e[1], e[2], e[3]) for e in events] == [
        (first["id"], 10.0, "submit"), (second["id"], 11.0, "submit"), (first["id"], 12.0, "clean"),
    ]
    assert events[0][0] == "a" and events[0][4] == {"urgency": 16}
    only = list(reader.events(JobQuery(jobids=(second["id"],))))
    assert [e[3] for e in only] == ["submit"]
    # the window bounds the events too (both jobs were active after 10.5)
    window = list(reader.events(JobQuery(since=10.5)))
    assert [e[2] for e in window] == [11.0, 12.0]
    # --until selects jobs submitted by then: these were submitted long after
    assert list(reader.events(JobQuery(until=11.5))) == []
    reader.close()


def test_indexes_serve_the_queries(tmp_path):
    """On the archive's own indexes, a listing with a count finds the
    active jobs by state and reads the inactive ones from an index in
    their order (no sort of them all), whatever it filters on."""
    path = str(tmp_path / "a.sqlite")
    write_archive(path, JOBS, instance="a")
    db = sqlite3.connect(path)
    failed = frozenset({"FAILED"})
    for query, index in (
        (JobQuery(userid=1000), "jobs_by_user_inactive"),
        (JobQuery(), "jobs_by_inactive"),
        (JobQuery(instances=("a",)), "jobs_by_instance_inactive"),
        (JobQuery(instances=("a",), userid=1000), "_inactive"),
        (JobQuery(results=failed, userid=1000), "_inactive"),
        (JobQuery(results=failed), "jobs_by_result_inactive"),
        (JobQuery(names=("sh",)), "jobs_by_name_inactive"),
        (JobQuery(queues=("debug",)), "jobs_by_queue_inactive"),
        (JobQuery(since=5.0), "jobs_by_inactive"),
    ):
        *active, inactive = JobQuery(**{**query.__dict__, "count": 1000}).jobs_statements()
        # a result selects no active job: then there is no active part
        assert len(active) == (0 if query.results else 1)
        for statement in active:
            assert "jobs_active_by_state" in plan_of(db, statement), query
        plan = plan_of(db, inactive)
        assert index in plan and "RIGHT PART OF ORDER BY" in plan, (query, plan)
    for statement in JobQuery(jobids=(1, 2), count=10).jobs_statements():
        assert "jobs_by_jobid" in plan_of(db, statement)
    db.close()


def spanned_jobs():
    """The captured jobs submitted 10 s apart: the inactive ones ended 5 s
    after their submit, every seventh 5,000 s after."""
    jobs = []
    for i, record in enumerate(JOBS):
        record = dict(record, t_submit=1000.0 + 10 * i)
        if "t_inactive" in record:
            record["t_inactive"] = record["t_submit"] + (5000.0 if i % 7 == 0 else 5.0)
        jobs.append(record)
    assert sum("t_inactive" in r for r in jobs[::7]) >= 2
    return jobs


def listed_ids(reader, **filters):
    return [job["id"] for job in reader.jobs(JobQuery(**filters), NOW)]


def test_an_until_listing_is_the_whole_listings_first_jobs(tmp_path):
    """--until with a count reads the inactive jobs only from until plus
    the archive's longest job down: jobs submitted before until that ended
    long after it are still listed, where the whole listing has them."""
    path = str(tmp_path / "a.sqlite")
    jobs = spanned_jobs()
    write_archive(path, jobs, instance="a")
    reader = open_reader(path)
    assert reader.span_index
    for until in (1000.0, 1035.0, 1071.0, 1100.0, 1000.0 + 10 * len(jobs), 999.0):
        whole = listed_ids(reader, until=until)
        assert whole == [r["id"] for r in sorted(jobs, key=_listing_key) if r["t_submit"] <= until]
        for count in (1, 2, 5, len(whole), len(whole) + 1):
            assert listed_ids(reader, until=until, count=count) == whole[:count + 1], (until, count)
    reader.close()
    # the archive's longest span is what bounds it: a longer one later
    # moves the bound, and a reader opened then finds that job
    late = dict(jobs[-1], id=jobs[-1]["id"] + 1, t_submit=1000.5, t_inactive=90000.0,
                state="INACTIVE", result="COMPLETED")
    write_archive(path, [late], instance="a")
    reader = open_reader(path)
    whole = listed_ids(reader, until=1001.0)
    inactive = [jobid for jobid in whole if jobid not in {r["id"] for r in jobs if "t_inactive" not in r}]
    assert inactive[0] == late["id"]
    for count in range(1, len(whole) + 2):
        assert listed_ids(reader, until=1001.0, count=count) == whole[:count + 1]
    reader.close()


def _listing_key(record):
    # flux jobs' order, as the archive's typed columns give it
    if "t_inactive" not in record:
        return (0, 0.0)
    return (1, -record["t_inactive"])


def test_an_until_listing_reads_an_index_range(tmp_path):
    """The span comes from its index's last entry, and the inactive part
    of an --until listing is a range of a t_inactive index, not the
    index from its newest entry back."""
    path = str(tmp_path / "a.sqlite")
    write_archive(path, spanned_jobs(), instance="a")
    db = sqlite3.connect(path)
    assert "jobs_by_span" in plan_of(db, (f"SELECT max({SPAN}) FROM jobs", []))
    for filters, index in (({}, "jobs_by_inactive"), ({"userid": 0}, "jobs_by_user_inactive")):
        *_, inactive = JobQuery(until=1050.0, span=5000.0, count=20, **filters).jobs_statements()
        plan = plan_of(db, inactive)
        assert f"{index} (" in plan and "t_inactive<?" in plan, plan
        *_, unbounded = JobQuery(until=1050.0, count=20, **filters).jobs_statements()
        assert "t_inactive<?" not in plan_of(db, unbounded)
    db.close()


def plan_of(db, statement):
    """SQLite's query plan of *statement* ((sql, params)), as one line."""
    sql, params = statement
    return " ".join(str(row) for row in db.execute("EXPLAIN QUERY PLAN " + sql, params))


def test_parse_user():
    assert parse_user("all") == (None, None)
    assert parse_user("ALL") == (None, None)
    assert parse_user("1234") == (1234, None)
    root = pwd.getpwuid(0).pw_name
    assert parse_user(root) == (0, None)
    assert parse_user("no-such-user-here") == (None, "no-such-user-here")
    with pytest.raises(QueryError):
        parse_user("")


def test_parse_filter():
    assert parse_filter("running") == (frozenset({"RUN", "CLEANUP"}), frozenset())
    assert parse_filter("active") == (
        frozenset({"NEW", "DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP"}), frozenset())
    assert parse_filter("INACTIVE,completed,Timeout") == (
        frozenset({"INACTIVE"}), frozenset({"COMPLETED", "TIMEOUT"}))
    with pytest.raises(QueryError, match="invalid filter 'done'"):
        parse_filter("done")
    with pytest.raises(QueryError, match="empty filter"):
        parse_filter("run,,failed")


def test_durations_and_times():
    assert [parse_duration(t) for t in ("90", "6h", "1.5d", "30m", "250ms", "2s")] == [
        90.0, 21600.0, 129600.0, 1800.0, 0.25, 2.0]
    assert parse_when("-6h", now=NOW) == NOW - 21600
    assert parse_when("-1.5d", now=NOW) == NOW - 129600
    assert parse_when("-30m", now=NOW) == NOW - 1800
    assert parse_when("+1h", now=NOW) == NOW + 3600
    assert parse_when("now", now=NOW) == NOW
    assert parse_when("1796400000.5") == 1796400000.5
    assert parse_when("2026-12-01T00:00:00Z") == 1796083200.0
    assert parse_when("2026-12-01T01:00:00+01:00") == 1796083200.0
    for bad in ("-6x", "yesterday", "-", "2026-13-01"):
        with pytest.raises(QueryError):
            parse_when(bad, now=NOW)


def test_job_id_encodings():
    jobid = JobID(JOBS[0]["id"])
    for text in (jobid.f58, jobid.f58plain, jobid.dec, jobid.hex, jobid.dothex, jobid.kvs):
        assert parse_jobid(text) == JOBS[0]["id"]
    try:
        words = jobid.words
    except NotImplementedError:
        with pytest.raises(QueryError, match="flux-core"):
            parse_jobid("academy-academy-academy--academy-academy-academy")
    else:
        assert parse_jobid(words) == JOBS[0]["id"]
    for bad in ("nope", "ƒ", "0x", "-1"):
        with pytest.raises(QueryError):
            parse_jobid(bad)


def test_parse_list():
    assert parse_list("a, b", "queue") == ("a", "b")
    with pytest.raises(QueryError, match=re.escape("empty queue in 'a,'")):
        parse_list("a,", "queue")
