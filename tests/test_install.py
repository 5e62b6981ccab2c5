"""flux_journal.install(): flux-core's classes replaced in a running process.

Run in subprocesses so that a stand-in ``flux`` package can be put on the
path (flux-core's own bindings need a broker's libraries).
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

FAKE_FLUX = {
    "flux/__init__.py": "",
    "flux/abc/__init__.py": "from flux.abc.journal import JournalConsumerBase, JournalEventBase\n",
    "flux/abc/journal.py": "class JournalConsumerBase: pass\nclass JournalEventBase: pass\n",
    "flux/job/__init__.py": "from flux.job.journal import JournalConsumer\n",
    "flux/job/journal.py": "class JournalConsumer: pass\nclass JournalEvent: pass\nSENTINEL_EVENT = None\n",
    "flux/resource/__init__.py": "from flux.resource.journal import ResourceJournalConsumer\n",
    "flux/resource/journal.py": "class ResourceJournalConsumer: pass\nclass ResourceJournalEvent: pass\n",
}


def run(code, path):
    env = {"PYTHONPATH": f"{path}:{REPO}", "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True, timeout=60
    )


def write_fake_flux(path):
    for name, text in FAKE_FLUX.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)


def test_install_replaces_every_journal_class(tmp_path):
    write_fake_flux(tmp_path)
    result = run(
        """
        import flux_journal, flux_journal.job, flux_journal.resource, flux_journal.abc
        from flux_journal import dropin
        replaced = flux_journal.install()
        import flux.abc, flux.abc.journal, flux.job, flux.job.journal, flux.resource, flux.resource.journal
        # the consumers: flux-core's behaviour at the end of the stream
        assert flux.abc.JournalConsumerBase is dropin.JournalConsumerBase
        assert flux.abc.journal.JournalConsumerBase is dropin.JournalConsumerBase
        assert flux.job.JournalConsumer is dropin.JournalConsumer
        assert flux.job.journal.JournalConsumer is dropin.JournalConsumer
        assert flux.resource.ResourceJournalConsumer is dropin.ResourceJournalConsumer
        assert flux.resource.journal.ResourceJournalConsumer is dropin.ResourceJournalConsumer
        assert issubclass(dropin.JournalConsumer, flux_journal.job.JournalConsumer)
        assert issubclass(flux.job.JournalConsumer, flux.abc.JournalConsumerBase)
        # the events: flux-journal's own
        assert flux.abc.journal.JournalEventBase is flux_journal.abc.JournalEventBase
        assert flux.job.journal.JournalEvent is flux_journal.job.JournalEvent
        assert flux.job.journal.SENTINEL_EVENT is flux_journal.job.SENTINEL_EVENT
        assert flux.resource.journal.ResourceJournalEvent is flux_journal.resource.ResourceJournalEvent
        # code written for flux-core now runs flux-journal's C core
        from flux.job import JournalConsumer
        from flux_journal.sim import SimFlux, Workload
        c = JournalConsumer(SimFlux(jobs=Workload(njobs=20, seed=1)), include_sentinel=True).start()
        first = c.poll(5)
        assert type(first).__module__ == "flux_journal.job", type(first)
        print(len(replaced))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "11"


def test_install_with_end_of_stream_callback_puts_the_documented_classes(tmp_path):
    write_fake_flux(tmp_path)
    result = run(
        """
        import flux_journal, flux_journal.job, flux_journal.resource, flux_journal.abc
        flux_journal.install(end_of_stream_callback=True)
        import flux.abc, flux.job, flux.resource
        assert flux.abc.JournalConsumerBase is flux_journal.abc.JournalConsumerBase
        assert flux.job.JournalConsumer is flux_journal.job.JournalConsumer
        assert flux.resource.ResourceJournalConsumer is flux_journal.resource.ResourceJournalConsumer
        from flux_journal.sim import SimFlux, ResourceWorkload
        h = SimFlux(resources=ResourceWorkload(nnodes=2))
        seen = []
        def cb(event):
            seen.append(event)
            if event is not None and event.is_empty():
                consumer.stop()
        consumer = flux.resource.ResourceJournalConsumer(h, include_sentinel=True)
        consumer.set_callback(cb).start()
        h.reactor_run()
        print(seen.count(None))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_install_takes_its_option_by_keyword_only():
    import flux_journal  # pylint: disable=import-outside-toplevel

    with pytest.raises(TypeError):
        flux_journal.install(True)  # pylint: disable=too-many-function-args


def test_install_without_flux_is_a_clear_error(tmp_path):
    result = run(
        """
        import flux_journal
        try:
            flux_journal.install()
        except ImportError as exc:
            print("ImportError:", exc)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "ImportError: flux_journal.install() needs flux-core's Python bindings" in result.stdout


def test_package_imports_without_flux(tmp_path):
    result = run(
        """
        import sys, flux_journal
        from flux_journal.job import JobID
        assert "flux" not in sys.modules
        print(JobID(175992995844).f58)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ƒ5d8u7AK"
