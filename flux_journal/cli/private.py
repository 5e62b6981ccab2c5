"""Owner-only files for what the commands store.

An archive or a checkpoint holds every user's jobs (command lines,
working directories, job names, user ids), which flux-core shows only to
each job's owner and the instance owner.  So the files the commands
create are owner-only (mode 0600) whatever the umask, from the instant
they exist.  An existing file is never chmodded: an operator who shared
it (a group and ``chmod 640``) may mean it; opening one that group or
others can read prints one warning per file per run, and the run goes on.
"""

import os
import stat
import sys

from flux_journal.cli.errors import PROG

__all__ = ["PRIVATE_MODE", "create_private", "create_replacement", "warn_if_shared"]

#: Mode of every file the commands create: read and write for the owner.
PRIVATE_MODE = 0o600

# Read permission for the group or others: the bits the warning is about.
_SHARED_READ = stat.S_IRGRP | stat.S_IROTH

# (st_dev, st_ino) of the files already warned about in this process.
_warned = set()


def warn_if_shared(path, status, stream=None):
    """Warn on *stream* (default stderr), once per file per process, if
    the file at *path* whose ``os.stat`` result is *status* can be read
    by its group or others."""
    mode = stat.S_IMODE(status.st_mode)
    if not mode & _SHARED_READ:
        return
    key = (status.st_dev, status.st_ino)
    if key in _warned:
        return
    _warned.add(key)
    stream = sys.stderr if stream is None else stream
    stream.write(
        f"{PROG}: warning: {path} is readable by group/others (mode {mode:04o}); "
        "it holds every user's jobs\n"
    )
    stream.flush()


def create_private(path):
    """Create *path* as an empty owner-only file if it does not exist.

    Returns True if it was created, False if it existed already (or a
    symbolic link is there): it is then left as it is, for the caller to
    :func:`warn_if_shared` once it knows the file is its own.  Raises
    OSError if the file cannot be created.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    except FileExistsError:
        return False
    try:
        # The umask can only have removed bits (0o200 would leave the
        # owner unable to reopen it for writing): make it exactly 0600.
        os.fchmod(fd, PRIVATE_MODE)
    finally:
        os.close(fd)
    return True


def create_replacement(path, replaced):
    """Create the new file *path*, to be renamed over *replaced*, and
    return a descriptor open for writing.

    The new file gets the permissions of the file it replaces, so that a
    deliberately shared file stays shared with the same group (its group
    bits are dropped if that group cannot be given to it); with nothing
    to replace, it is owner-only.  A file left at *path* by a killed run
    is removed first rather than reused: another process may hold it open.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        mode = PRIVATE_MODE
        try:
            old = os.stat(replaced)
        except FileNotFoundError:
            old = None
        if old is not None:
            mode = old.st_mode & 0o777
            if old.st_gid != os.fstat(fd).st_gid:
                try:
                    os.fchown(fd, -1, old.st_gid)
                except PermissionError:
                    mode &= ~stat.S_IRWXG
        os.fchmod(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd
