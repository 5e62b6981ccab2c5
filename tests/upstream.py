"""Load flux-core's own journal consumer classes for differential tests.

The test suite checks flux-journal against flux-core's pure-Python
consumers (flux.abc.journal, flux.job.journal, flux.resource.journal) fed
the same streams.  flux-core's ``flux-python`` wheel cannot simply be
imported here: importing ``flux`` loads a compiled extension that needs
libflux-core.so.  Those four consumer modules, though, are plain Python
whose only dependencies inside ``flux`` are a couple of constants, the
EventLogEvent class and JobID.

So this helper

* gets the wheel: the path in ``$FLUX_JOURNAL_UPSTREAM_WHEEL``, else one
  already in ``<repo>/.cache/upstream/``, else ``pip download`` of
  ``flux-python==0.88.0`` into that directory;
* extracts just the needed ``.py`` files (checked against the wheel's
  RECORD hashes) into the same cache;
* executes them as modules with their real names, under stand-in
  ``flux``, ``flux.constants``, ``flux.abc``, ``flux.job`` and
  ``flux.resource`` modules placed in ``sys.modules`` only for the
  duration, then puts ``sys.modules`` back exactly as it was, so nothing
  named ``flux`` is left behind to confuse flux-journal's own optional
  imports of flux-core.

Any failure to obtain the code raises :class:`UpstreamUnavailable`: a
differential test that silently skipped would prove nothing.
"""

import base64
import dataclasses
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import types
import zipfile
from pathlib import Path
from typing import Any, Optional

from flux_journal.jobid import JobID

__all__ = [
    "UPSTREAM_VERSION",
    "WHEEL_ENV",
    "CACHE_DIR",
    "Upstream",
    "UpstreamUnavailable",
    "find_wheel",
    "extract_sources",
    "load_upstream",
]

UPSTREAM_VERSION = "0.88.0"
"""flux-python release whose consumers flux-journal is compared against."""

WHEEL_ENV = "FLUX_JOURNAL_UPSTREAM_WHEEL"
"""Environment variable naming a flux-python .whl to use instead."""

REPO_ROOT = Path(__file__).resolve().parent.parent
"""Root of the flux-journal checkout holding this file."""

CACHE_DIR = REPO_ROOT / ".cache" / "upstream"
"""Where the downloaded wheel and extracted sources are kept (gitignored)."""

# Wheel members to extract, in the order they must be executed: each one
# imports only the ones before it (plus the stand-ins).
_SOURCES = (
    ("flux.eventlog", "flux/eventlog.py"),
    ("flux.abc.journal", "flux/abc/journal.py"),
    ("flux.job.journal", "flux/job/journal.py"),
    ("flux.resource.journal", "flux/resource/journal.py"),
)

# Values of flux-core's C enums that abc/journal.py imports from
# flux.constants (flux/core/rpc.h).
_FLUX_RPC_NORESPONSE = 1
_FLUX_RPC_STREAMING = 2


class UpstreamUnavailable(RuntimeError):
    """flux-core's consumer code could not be obtained or loaded."""


@dataclasses.dataclass(frozen=True)
class Upstream:
    """flux-core's journal consumer classes, loaded in isolation.

    Attributes mirror the names in flux-core; ``JobID`` is the stand-in
    (``flux_journal.jobid.JobID``) that flux.job.journal was given.  The
    module objects are kept too, for tests that need something else from
    them, along with the wheel they came from.
    """

    JournalConsumerBase: type
    JournalEventBase: type
    JournalConsumer: type
    JournalEvent: type
    SENTINEL_EVENT: Any
    ResourceJournalConsumer: type
    ResourceJournalEvent: type
    EventLogEvent: type
    JobID: type
    eventlog: types.ModuleType
    abc_journal: types.ModuleType
    job_journal: types.ModuleType
    resource_journal: types.ModuleType
    wheel: Path
    source_dir: Path


def _cached_wheels(cache_dir):
    """Wheels of the pinned version already in cache_dir, best first."""
    return sorted(cache_dir.glob(f"flux_python-{UPSTREAM_VERSION}-*.whl"))


# pip arguments to try in turn.  The first asks for the wheel matching
# this interpreter, as a developer would.  Only pure-Python files are
# used, so when no such wheel exists (another Python version or CPU) the
# known cp311 x86_64 build serves just as well.
_PIP_TARGETS = (
    (),
    (
        "--platform=manylinux_2_17_x86_64",
        "--python-version=3.11",
        "--implementation=cp",
        "--abi=cp311",
    ),
)


def _download_wheel(cache_dir):
    """pip download the pinned wheel into cache_dir; return its path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    failures = []
    for target in _PIP_TARGETS:
        # Download into a private directory and move the result into
        # place, so a concurrent run never sees a half-written wheel.
        with tempfile.TemporaryDirectory(
            dir=cache_dir, prefix=".download-"
        ) as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                *target,
                f"flux-python=={UPSTREAM_VERSION}",
                "-d",
                tmp,
            ]
            try:
                proc = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                failures.append(f"$ {' '.join(cmd)}\n{exc}")
                continue
            wheels = sorted(Path(tmp).glob("flux_python-*.whl"))
            if proc.returncode == 0 and wheels:
                target_path = cache_dir / wheels[0].name
                os.replace(wheels[0], target_path)
                return target_path
            failures.append(
                f"$ {' '.join(cmd)}\nexit {proc.returncode}\n"
                f"{proc.stdout}{proc.stderr}"
            )
    raise UpstreamUnavailable(
        f"could not download flux-python=={UPSTREAM_VERSION} with pip; set "
        f"{WHEEL_ENV} to the path of a flux-python wheel instead.\n\n"
        + "\n\n".join(failures)
    )


def find_wheel(cache_dir: Optional[Path] = None) -> Path:
    """Return the path of the flux-python wheel to take sources from.

    ``$FLUX_JOURNAL_UPSTREAM_WHEEL`` wins if set (and must name an
    existing file); otherwise a cached ``flux_python-0.88.0-*.whl`` is
    reused, or downloaded with pip when there is none.

    Raises:
        UpstreamUnavailable: the wheel cannot be found or downloaded.
    """
    override = os.environ.get(WHEEL_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise UpstreamUnavailable(
                f"{WHEEL_ENV}={override!r} does not name an existing file"
            )
        return path.resolve()
    cache_dir = CACHE_DIR if cache_dir is None else Path(cache_dir)
    wheels = _cached_wheels(cache_dir)
    if wheels:
        return wheels[0]
    return _download_wheel(cache_dir)


def _record_hashes(whl):
    """Map wheel member -> expected sha256 digest, from its RECORD."""
    records = [n for n in whl.namelist() if n.endswith(".dist-info/RECORD")]
    hashes = {}
    for record in records:
        for line in whl.read(record).decode("utf-8").splitlines():
            # RECORD is CSV, but none of the members we want has a comma
            # in its name, so a right split is enough.
            parts = line.rsplit(",", 2)
            if len(parts) == 3 and parts[1].startswith("sha256="):
                hashes[parts[0]] = parts[1][len("sha256=") :]
    return hashes


def _sha256_b64(data):
    """A digest in RECORD's spelling: urlsafe base64 without padding."""
    digest = hashlib.sha256(data).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def extract_sources(wheel: Path, cache_dir: Optional[Path] = None) -> Path:
    """Extract the consumer sources from wheel; return their root dir.

    Files land in ``<cache>/<wheel name without .whl>/flux/...`` and are
    reused by later runs.  Each member is checked against the wheel's
    RECORD so that a corrupt or foreign wheel is reported, not tested.

    Raises:
        UpstreamUnavailable: the wheel is unreadable or lacks a file.
    """
    cache_dir = CACHE_DIR if cache_dir is None else Path(cache_dir)
    dest = cache_dir / Path(wheel).name[: -len(".whl")]
    if all((dest / member).is_file() for _, member in _SOURCES):
        return dest
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as whl:
            hashes = _record_hashes(whl)
            contents = {}
            for _, member in _SOURCES:
                try:
                    data = whl.read(member)
                except KeyError:
                    raise UpstreamUnavailable(
                        f"{wheel} has no {member}; is it a flux-python wheel?"
                    ) from None
                expected = hashes.get(member)
                if expected is not None and expected != _sha256_b64(data):
                    raise UpstreamUnavailable(
                        f"{member} in {wheel} does not match its RECORD hash"
                    )
                contents[member] = data
    except (OSError, zipfile.BadZipFile) as exc:
        raise UpstreamUnavailable(f"cannot read wheel {wheel}: {exc}") from exc
    # Build the tree aside and rename it into place: an interrupted or
    # concurrent extraction never leaves a partial tree at dest.
    tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".extract-"))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0700 would hide the tree from others
        for member, data in contents.items():
            path = tmp / member
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        try:
            os.rename(tmp, dest)
        except OSError:
            # Lost a race with another process, or a stale partial tree:
            # keep a complete one, else replace it.
            if not all((dest / m).is_file() for _, m in _SOURCES):
                shutil.rmtree(dest, ignore_errors=True)
                os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _stub(name, package=False, **attrs):
    """A bare module object standing in for part of the flux package."""
    module = types.ModuleType(name, f"flux-journal test stand-in for {name}")
    if package:
        # An empty __path__ makes it a package that can find nothing on
        # disk, so a stray import of an unexpected submodule fails loudly.
        module.__path__ = []
    for key, value in attrs.items():
        setattr(module, key, value)
    return module


def _exec_source(name, path):
    """Create module `name` from file `path`, registered in sys.modules."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered before running, as the import system does, so the module
    # can be found by anything it imports while it executes.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _is_flux_name(name):
    return name == "flux" or name.startswith("flux.")


# sys.modules is process-wide: serialise the temporary swap.
_LOAD_LOCK = threading.Lock()
_loaded: Optional[Upstream] = None


def _load(wheel, source_dir):
    """Execute the extracted sources under stand-ins; restore sys.modules."""
    saved = {n: m for n, m in sys.modules.items() if _is_flux_name(n)}
    try:
        for name in saved:
            del sys.modules[name]
        sys.modules["flux"] = _stub("flux", package=True)
        sys.modules["flux.constants"] = _stub(
            "flux.constants",
            FLUX_RPC_NORESPONSE=_FLUX_RPC_NORESPONSE,
            FLUX_RPC_STREAMING=_FLUX_RPC_STREAMING,
        )
        modules = {}
        for name, member in _SOURCES:
            modules[name] = _exec_source(name, source_dir / member)
            if name == "flux.abc.journal":
                # flux/abc/__init__.py re-exports exactly these two.
                abc_journal = modules[name]
                sys.modules["flux.abc"] = _stub(
                    "flux.abc",
                    package=True,
                    journal=abc_journal,
                    JournalConsumerBase=abc_journal.JournalConsumerBase,
                    JournalEventBase=abc_journal.JournalEventBase,
                )
                sys.modules["flux.job"] = _stub(
                    "flux.job", package=True, JobID=JobID
                )
                sys.modules["flux.resource"] = _stub(
                    "flux.resource", package=True
                )
    except Exception as exc:
        raise UpstreamUnavailable(
            f"failed to load flux-core's consumers from {source_dir}: {exc}"
        ) from exc
    finally:
        for name in [n for n in sys.modules if _is_flux_name(n)]:
            del sys.modules[name]
        sys.modules.update(saved)

    eventlog = modules["flux.eventlog"]
    abc_journal = modules["flux.abc.journal"]
    job_journal = modules["flux.job.journal"]
    resource_journal = modules["flux.resource.journal"]
    return Upstream(
        JournalConsumerBase=abc_journal.JournalConsumerBase,
        JournalEventBase=abc_journal.JournalEventBase,
        JournalConsumer=job_journal.JournalConsumer,
        JournalEvent=job_journal.JournalEvent,
        SENTINEL_EVENT=job_journal.SENTINEL_EVENT,
        ResourceJournalConsumer=resource_journal.ResourceJournalConsumer,
        ResourceJournalEvent=resource_journal.ResourceJournalEvent,
        EventLogEvent=eventlog.EventLogEvent,
        JobID=JobID,
        eventlog=eventlog,
        abc_journal=abc_journal,
        job_journal=job_journal,
        resource_journal=resource_journal,
        wheel=Path(wheel),
        source_dir=Path(source_dir),
    )


def load_upstream() -> Upstream:
    """Return flux-core's consumer classes, loading them on first use.

    The result is cached for the life of the process, so every test sees
    the same classes (and the same SENTINEL_EVENT object).

    Raises:
        UpstreamUnavailable: the wheel cannot be had or its code loaded.
    """
    global _loaded  # pylint: disable=global-statement
    with _LOAD_LOCK:
        if _loaded is None:
            wheel = find_wheel()
            _loaded = _load(wheel, extract_sources(wheel))
        return _loaded
