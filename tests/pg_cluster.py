"""A throwaway PostgreSQL cluster for the tests: a real server, started
from the machine's PostgreSQL binaries (Debian's ``postgresql-15``),
listening only on a unix socket in a temporary directory (no TCP), and
removed afterwards.

PostgreSQL refuses to run as root, so under root the cluster belongs to
the ``postgres`` account the Debian package creates (its files in a
directory handed to that account); otherwise to the user running the
tests.  Authentication (pg_hba.conf): the superuser :data:`SUPERUSER`
connects without a password; every other role needs its password
(scram-sha-256), so a wrong password is a real refusal.

Tests get a :class:`Cluster` from the ``pg_cluster`` fixture (tests/
conftest.py), which skips, saying why, when the server binaries or
psycopg are missing.
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from urllib.parse import quote

__all__ = ["SUPERUSER", "Cluster", "ClusterUnavailable", "find_bindir"]

#: The cluster's superuser (created by initdb; connects without password).
SUPERUSER = "fj_admin"
# Only for the socket file's name: nothing listens on TCP.
_PORT = 5432
_START_SECONDS = 30.0


class ClusterUnavailable(Exception):
    """No PostgreSQL server can be started here (the reason is the message)."""


def _major(bindir):
    version = os.path.basename(os.path.dirname(bindir))  # /usr/lib/postgresql/15/bin
    return int(version) if version.isdigit() else 0


def find_bindir():
    """The directory of the newest installed server's binaries (Debian
    keeps them off PATH, under /usr/lib/postgresql/N/bin), or None."""
    found = [os.path.dirname(p) for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")]
    if found:
        return max(found, key=_major)
    pg_ctl = shutil.which("pg_ctl")
    return os.path.dirname(pg_ctl) if pg_ctl else None


class Cluster:
    """One running throwaway cluster; :meth:`stop` removes it.

    Args:
        settings: ``postgresql.conf`` settings beyond the throwaway's own,
            as (name, value) pairs (bench_archive's ``--pg-setting``)

    Attributes:
        socket_dir: the directory of its unix socket (libpq's ``host``)
        port: the port number in the socket's name
    """

    def __init__(self, settings=()):
        self.bindir = find_bindir()
        if self.bindir is None:
            raise ClusterUnavailable(
                "no PostgreSQL server binaries (install Debian's postgresql-15)"
            )
        self._owner = None
        if os.geteuid() == 0:
            try:
                self._owner = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise ClusterUnavailable(
                    "running as root and there is no 'postgres' account to run the server as"
                ) from exc
        self.base = tempfile.mkdtemp(prefix="fj-pg-")
        self.data = os.path.join(self.base, "data")
        self.socket_dir = os.path.join(self.base, "socket")
        self.port = _PORT
        os.mkdir(self.socket_dir)
        if self._owner is not None:
            for path in (self.base, self.socket_dir):
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
            # the test process (root) reaches the socket; others need not
            os.chmod(self.base, 0o711)
        self._started = False
        try:
            self._initdb(settings)
            self._start()
        except BaseException:
            self.stop()
            raise

    def _run(self, *argv):
        command = [os.path.join(self.bindir, argv[0]), *argv[1:]]
        if self._owner is not None:
            command = ["runuser", "-u", "postgres", "--", *command]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              cwd=self.base)
        if proc.returncode != 0:
            raise ClusterUnavailable(
                f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}"
            )
        return proc.stdout

    def _initdb(self, settings):
        self._run("initdb", "-D", self.data, "-U", SUPERUSER, "--auth-local=trust",
                  "--no-instructions", "-E", "UTF8", "--locale=C")
        hba = os.path.join(self.data, "pg_hba.conf")
        # the superuser without a password, everyone else with theirs
        with open(hba, "w", encoding="ascii") as out:
            out.write(f"local all {SUPERUSER} trust\nlocal all all scram-sha-256\n")
        with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="ascii") as out:
            out.write(
                "listen_addresses = ''\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                f"port = {self.port}\n"
                "fsync = off\n"  # a throwaway: speed over durability
                "max_connections = 50\n"
            )
            out.writelines(f"{name} = {value}\n" for name, value in settings)

    def _start(self):
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.base, "server.log"),
                  "-w", "-t", str(int(_START_SECONDS)), "start")
        self._started = True

    def url(self, dbname="postgres", user=SUPERUSER, password=None):
        """A libpq URL reaching *dbname* as *user* over the unix socket."""
        auth = quote(user, safe="")
        if password is not None:
            auth += ":" + quote(password, safe="")
        return (f"postgresql://{auth}@/{quote(dbname, safe='')}"
                f"?host={quote(self.socket_dir, safe='')}&port={self.port}")

    def sql(self, statement, dbname="postgres"):
        """Run *statement* as the superuser; return the rows, if any."""
        import psycopg  # pylint: disable=import-outside-toplevel

        with psycopg.connect(self.url(dbname), autocommit=True) as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def new_database(self, prefix="fj"):
        """Create an empty database with a fresh name; return its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.sql(f'CREATE DATABASE "{name}"')
        return name

    def stop(self):
        """Stop the server (fast shutdown) and remove its files."""
        if self._started:
            self._started = False
            try:
                self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")
            except ClusterUnavailable:
                pass
        deadline = time.monotonic() + 5
        while True:
            try:
                shutil.rmtree(self.base)
                return
            except FileNotFoundError:
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
