"""Tests of the files the commands store: archives and checkpoints are
owner-only whatever the umask, an existing shared one is warned about
once and left as the operator set it."""

import io
import os
import pathlib
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile

import pytest

from flux_journal.cli import private
from flux_journal.cli.archive import Archive
from flux_journal.cli.checkpoint import Checkpoint, Position
from journal_helpers import cli_env, command

# A group id no test machine gives the test process.
OTHER_GID = 54321


def mode(path):
    """Permission bits of *path*."""
    return stat.S_IMODE(os.stat(path).st_mode)


def run(*args, umask=None):
    """Run flux-journal (under *umask* if given); return the CompletedProcess."""
    return subprocess.run(
        command(*args),
        env=cli_env(),
        capture_output=True,
        timeout=120,
        check=False,
        preexec_fn=None if umask is None else (lambda: os.umask(umask)),
    )


def warnings(stderr):
    """The privacy warning lines in *stderr* (bytes)."""
    return [line for line in stderr.decode().splitlines() if "readable by group/others" in line]


@pytest.fixture
def world_dir():
    """A directory other users can enter (pytest's tmp_path is in a
    0700 directory), removed afterwards."""
    path = tempfile.mkdtemp(prefix="fj-privacy-")
    os.chmod(path, 0o755)
    yield pathlib.Path(path)
    shutil.rmtree(path)


@pytest.fixture(params=[0o000, 0o022], ids=["umask0000", "umask0022"])
def umask(request):
    """Run the test body under a permissive and the usual umask."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_new_archive_wal_and_shm_are_owner_only(tmp_path, umask):
    db = tmp_path / "journal.sqlite"
    with Archive(db) as archive:
        # WAL mode and the schema created both companion files.
        files = [db, tmp_path / "journal.sqlite-wal", tmp_path / "journal.sqlite-shm"]
        assert {path.name: oct(mode(path)) for path in files} == {
            path.name: "0o600" for path in files
        }
        assert archive.counts()["events"] == 0


def test_archive_command_files_owner_only(tmp_path, umask):
    db = tmp_path / "journal.sqlite"
    proc = run("archive", "--db", db, "--sim", "30", umask=umask)
    assert proc.returncode == 0 and proc.stderr == b""
    assert mode(db) == 0o600
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 30
    # Reopening its own private archive: no warning, mode unchanged.
    proc = run("archive", "--db", db, "--sim", "30", umask=umask)
    assert proc.returncode == 0 and proc.stderr == b""
    assert mode(db) == 0o600


def test_checkpoint_owner_only(tmp_path, umask):
    ck = tmp_path / "pos.json"
    for _ in range(2):  # created, then replaced
        proc = run("jobs", "--sim", "20", "--checkpoint", ck, umask=umask)
        assert proc.returncode == 0 and proc.stderr == b"", proc.stderr
        assert mode(ck) == 0o600
    assert Checkpoint(ck, "jobs").load().events > 0
    assert not os.path.exists(f"{ck}.tmp")


def test_checkpoint_does_not_reuse_a_leftover_temporary_file(tmp_path, umask):
    # A killed older run left pos.json.tmp world-readable; another process
    # may hold it open, so the new position must go into a new file.
    ck = tmp_path / "pos.json"
    leftover = tmp_path / "pos.json.tmp"
    leftover.write_text("old")
    os.chmod(leftover, 0o644)
    with open(leftover, "rb") as held:
        Checkpoint(ck, "jobs").save(Position(None, 0))
        assert held.read() == b"old"
    assert mode(ck) == 0o600


def test_shared_archive_warns_once_and_goes_on(tmp_path):
    db = tmp_path / "journal.sqlite"
    run("archive", "--db", db, "--sim", "10")
    os.chmod(db, 0o644)
    proc = run("archive", "--db", db, "--sim", "30")
    assert proc.returncode == 0
    assert warnings(proc.stderr) == [
        f"flux-journal: warning: {db} is readable by group/others (mode 0644); "
        "it holds every user's jobs"
    ]
    assert proc.stderr.decode().count("\n") == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] > 10


def test_shared_wal_and_shm_left_open_are_warned_about(tmp_path):
    # Another connection holds the WAL files of a shared archive open, as a
    # killed writer leaves them: each of the three files is named once.
    db = tmp_path / "journal.sqlite"
    run("archive", "--db", db, "--sim", "10")
    os.chmod(db, 0o640)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("SELECT count(*) FROM jobs").fetchone()
        assert mode(f"{db}-wal") == mode(f"{db}-shm") == 0o640
        proc = run("archive", "--db", db, "--sim", "10")
    finally:
        holder.close()
    assert proc.returncode == 0
    named = sorted(line.split()[2] for line in warnings(proc.stderr))
    assert named == [str(db), f"{db}-shm", f"{db}-wal"]
    assert all("(mode 0640)" in line for line in warnings(proc.stderr))


def test_shared_archive_is_not_chmodded(tmp_path):
    db = tmp_path / "journal.sqlite"
    run("archive", "--db", db, "--sim", "10")
    os.chmod(db, 0o640)
    proc = run("archive", "--db", db, "--sim", "10")
    assert proc.returncode == 0 and len(warnings(proc.stderr)) == 1
    assert mode(db) == 0o640


def test_shared_checkpoint_warns_once_and_keeps_its_mode(tmp_path):
    ck = tmp_path / "pos.json"
    run("jobs", "--sim", "10", "--checkpoint", ck)
    os.chmod(ck, 0o640)
    # --checkpoint-interval 0 replaces the file after every write: the
    # warning still comes once, and every replacement keeps the mode.
    proc = run("jobs", "--sim", "50", "--checkpoint", ck, "--checkpoint-interval", "0")
    assert proc.returncode == 0
    assert proc.stderr.decode().splitlines() == [
        f"flux-journal: warning: {ck} is readable by group/others (mode 0640); "
        "it holds every user's jobs"
    ]
    assert mode(ck) == 0o640


_SAVER = """
import os, sys
from flux_journal.cli.checkpoint import Checkpoint, Position
os.setgroups([]); os.setgid(65534); os.setuid(65534)
Checkpoint(sys.argv[1], "jobs").save(Position(None, 0))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to set another user's group")
def test_replaced_checkpoint_keeps_its_group_or_drops_group_access(world_dir):
    ck = world_dir / "pos.json"
    Checkpoint(ck, "jobs").save(Position(None, 0))
    os.chown(ck, -1, OTHER_GID)
    os.chmod(ck, 0o640)
    Checkpoint(ck, "jobs").save(Position(None, 0))
    assert (os.stat(ck).st_gid, mode(ck)) == (OTHER_GID, 0o640)
    # A user outside that group cannot give it to the new file, which
    # would then be readable by the user's own group: it is dropped.
    os.chown(world_dir, 65534, -1)
    os.chown(ck, 65534, OTHER_GID)
    subprocess.run([sys.executable, "-c", _SAVER, str(ck)], env=cli_env(), check=True)
    assert (os.stat(ck).st_uid, os.stat(ck).st_gid, mode(ck)) == (65534, 65534, 0o600)


def test_warning_is_given_once_per_file():
    stream = io.StringIO()
    status = os.stat_result((0o100644, 987654321, 4242, 1, 0, 0, 0, 0, 0, 0))
    private.warn_if_shared("a.sqlite", status, stream)
    private.warn_if_shared("a.sqlite", status, stream)
    other = os.stat_result((0o100604, 987654322, 4242, 1, 0, 0, 0, 0, 0, 0))
    private.warn_if_shared("b.sqlite", other, stream)
    owner_only = os.stat_result((0o100600, 987654323, 4242, 1, 0, 0, 0, 0, 0, 0))
    private.warn_if_shared("c.sqlite", owner_only, stream)
    assert stream.getvalue().splitlines() == [
        "flux-journal: warning: a.sqlite is readable by group/others (mode 0644); "
        "it holds every user's jobs",
        "flux-journal: warning: b.sqlite is readable by group/others (mode 0604); "
        "it holds every user's jobs",
    ]


_READER = """
import os, sqlite3, sys
os.setgroups([int(sys.argv[2])]); os.setgid(int(sys.argv[2])); os.setuid(65534)
try:
    conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    print(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
except sqlite3.Error as exc:
    print(exc)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to read as another user")
def test_group_shared_archive_is_readable_while_written(world_dir):
    # What the README says: chgrp + chmod 640 on FILE* lets a group member
    # read a live archive, without write access to the files or directory.
    db = world_dir / "journal.sqlite"
    run("archive", "--db", db, "--sim", "10")
    os.chown(db, -1, OTHER_GID)
    os.chmod(db, 0o640)
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("SELECT count(*) FROM jobs").fetchone()  # creates -wal/-shm
        assert {os.stat(f"{db}{s}").st_gid for s in ("-wal", "-shm")} == {OTHER_GID}
        read = subprocess.run([sys.executable, "-c", _READER, str(db), str(OTHER_GID)],
                              capture_output=True, text=True, check=True)
        assert read.stdout.strip() == "10"
    finally:
        writer.close()
    # No writer: the reader cannot create the -wal and -shm files.
    read = subprocess.run([sys.executable, "-c", _READER, str(db), str(OTHER_GID)],
                          capture_output=True, text=True, check=True)
    assert read.stdout.strip() == "attempt to write a readonly database"


def test_shared_file_that_is_not_ours_gets_only_the_error(tmp_path):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    ck = tmp_path / "other.json"
    ck.write_text('{"some": "other file"}')
    for path in (junk, ck):
        os.chmod(path, 0o644)
    proc = run("archive", "--db", junk, "--sim", "5")
    assert proc.returncode == 1
    assert proc.stderr.decode().splitlines() == [f"flux-journal: {junk}: file is not a database"]
    proc = run("jobs", "--sim", "5", "--checkpoint", ck)
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1
    assert b"not a flux-journal checkpoint" in proc.stderr and warnings(proc.stderr) == []
