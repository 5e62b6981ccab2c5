"""PostgreSQL-only behaviour of ``flux-journal archive``, on a real
server (the ``pg_cluster`` fixture): connection failures, a missing
psycopg, and the privileges of the tables the archive creates (issue 22).
The behaviour shared with SQLite is tested on both in test_archive.py.
"""

import subprocess
import threading
import time

import pytest

from flux_journal.cli.archive import Archive
from flux_journal.store import connect, schema
from journal_helpers import REPO, archive, archive_env, command

psycopg = pytest.importorskip("psycopg", reason="needs psycopg (flux-journal[postgres])")

# The read-only role README documents, for `flux-journal history` users
# (the database's name and the archiver's role filled in).
READ_ONLY_ROLE = """
CREATE ROLE flux_history LOGIN PASSWORD 'history-secret';
GRANT CONNECT ON DATABASE {db} TO flux_history;
GRANT USAGE ON SCHEMA public TO flux_history;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO flux_history;
ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT SELECT ON TABLES TO flux_history;
"""


def one_line(proc):
    """The one line the command printed on stderr."""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0]
    return lines[0]


def test_unreachable_server(tmp_path):
    url = f"postgresql://flux@/flux?host={tmp_path}"  # no server's socket there
    line = one_line(archive("--db", url, "--sim", "20", check_rc=1))
    assert url in line and "No such file or directory" in line


def test_wrong_password(pg_cluster):
    db = pg_cluster.new_database()
    pg_cluster.sql("CREATE ROLE fj_writer LOGIN PASSWORD 'right'")
    try:
        line = one_line(archive("--db", pg_cluster.url(db, "fj_writer", "wrong"), "--sim", "20",
                                check_rc=1))
        assert 'password authentication failed for user "fj_writer"' in line
        assert "wrong" not in line.replace("password authentication", "")  # hidden: ***
    finally:
        pg_cluster.sql("DROP ROLE fj_writer")
    assert pg_cluster.sql("SELECT to_regclass('events')", db) == [(None,)]


def test_missing_psycopg(tmp_path, pg_cluster):
    """Without psycopg, a PostgreSQL URL gets one line naming the extra."""
    # a psycopg that cannot be imported, ahead of the installed one
    (tmp_path / "psycopg.py").write_text("raise ImportError('No module named psycopg')\n")
    proc = subprocess.run(
        command("archive", "--db", pg_cluster.url(), "--sim"),
        env=archive_env(PYTHONPATH=f"{tmp_path}:{REPO}"), capture_output=True, timeout=60,
        check=False)
    assert proc.returncode == 1
    assert "install 'flux-journal[postgres]'" in one_line(proc)


def test_tables_grant_nothing_to_public_and_read_only_role(pg_cluster):
    """The archive's tables grant nothing to PUBLIC, even where default
    privileges would; README's read-only role can query them and can
    neither write nor alter them; a role without grants cannot read."""
    db = pg_cluster.new_database()
    # a site whose default privileges grant every new table to PUBLIC
    pg_cluster.sql("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO PUBLIC",
                   db)
    archive("--db", pg_cluster.url(db), "--sim", "100", "--seed", "2")
    for statement in READ_ONLY_ROLE.format(db=db, owner="fj_admin").strip().splitlines():
        pg_cluster.sql(statement, db)
    pg_cluster.sql("CREATE ROLE fj_nobody LOGIN PASSWORD 'nobody'")
    try:
        # PG 15: PUBLIC may not create in schema public either
        assert pg_cluster.sql(
            "SELECT has_schema_privilege('public', 'public', 'CREATE')", db) == [(False,)]

        reader = connect(pg_cluster.url(db, "flux_history", "history-secret"))
        try:
            cursor = reader.connection.cursor()
            cursor.execute("SELECT count(*) FROM jobs WHERE instance = %s", ("sim",))
            assert cursor.fetchone() == (100,)
        finally:
            reader.close()
        # a plain session of the role, not a read-only one: its grants refuse
        with psycopg.connect(pg_cluster.url(db, "flux_history", "history-secret"),
                             autocommit=True) as conn:
            for table in ("events", "jobs", "resource_events", "resume", "meta"):
                conn.execute(f"SELECT * FROM {table} LIMIT 1")
            for statement in (
                "INSERT INTO meta VALUES ('x', 'y')",
                "UPDATE jobs SET state = 'RUN'",
                "DELETE FROM events",
                "DROP TABLE events",
                "ALTER TABLE jobs ADD COLUMN x text",
                "TRUNCATE resume",
                "CREATE TABLE public.mine (x int)",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
        with psycopg.connect(pg_cluster.url(db, "fj_nobody", "nobody"),
                             autocommit=True) as conn:
            for table in ("events", "jobs", "resource_events", "resume", "meta"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT * FROM {table} LIMIT 1")
        assert pg_cluster.sql("SELECT count(*) FROM events", db)[0][0] > 100
    finally:
        pg_cluster.sql("DROP OWNED BY flux_history, fj_nobody", db)
        pg_cluster.sql("DROP ROLE flux_history")
        pg_cluster.sql("DROP ROLE fj_nobody")


def test_upgrade_beside_a_running_archiver_waits_and_never_deadlocks(pg_cluster):
    """An archiver upgrading a version 3 archive makes only the index it
    lacks, on ``jobs``: another archiver still running, in the middle of a
    commit with its events written and its job rows still to write, waits
    for the upgrade and goes on, and neither is failed as a deadlock (an
    upgrade making every index locks ``events`` too, which that archiver
    holds, while that archiver waits for ``jobs``)."""
    db = pg_cluster.new_database()
    url = pg_cluster.url(db)
    archive("--db", url, "--sim", "50", "--seed", "2", "--instance", "x")
    pg_cluster.sql(f"DROP INDEX {schema.SPAN_INDEX}", db)
    pg_cluster.sql("UPDATE meta SET value = '3' WHERE key = 'schema_version'", db)
    running = psycopg.connect(url)  # the other archiver's open commit
    failed = []

    def upgrade():
        try:
            Archive(url, "jobs", "x", writer_process=False).close()
        except Exception as exc:  # pylint: disable=broad-except
            failed.append(exc)

    try:
        running.execute("INSERT INTO events (instance, jobid, seq, timestamp, name, context)"
                        " VALUES ('y', 1, 0, 1.0, 'submit', '{}')")
        upgrader = threading.Thread(target=upgrade)
        upgrader.start()
        deadline = time.monotonic() + 30
        # until the upgrade holds jobs (building its index) or is over
        while upgrader.is_alive() and not pg_cluster.sql(
                "SELECT 1 FROM pg_locks JOIN pg_class ON pg_class.oid = relation"
                " WHERE relname = 'jobs' AND mode = 'ShareLock' AND granted", db):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        running.execute("INSERT INTO jobs (instance, jobid, state, nevents, record)"
                        " VALUES ('y', 1, 'NEW', 1, '{}')")
        running.commit()
        upgrader.join(30)
        assert not upgrader.is_alive() and failed == []
    finally:
        running.close()
    assert pg_cluster.sql("SELECT value FROM meta WHERE key = 'schema_version'", db) == [
        (str(schema.SCHEMA_VERSION),)]
    assert pg_cluster.sql(f"SELECT to_regclass('{schema.SPAN_INDEX}') IS NOT NULL", db) == [
        (True,)]
    assert pg_cluster.sql("SELECT count(*) FROM jobs WHERE instance = 'y'", db) == [(1,)]
