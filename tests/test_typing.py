"""The public API's type annotations (shipped with py.typed), as mypy
reads them: the public modules check clean with every function
annotated ([tool.mypy] in pyproject.toml), code using the API checks
clean under --strict, and misuse of it is reported where it is."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Uses of the API a user's code makes; each annotated variable pins the
# type mypy must infer (a wrong or missing annotation is an error).
GOOD_USE = '''
from typing import Dict, Iterator, List, Optional

import flux_journal
from flux_journal import (
    JournalConsumer, JournalEvent, JournalEventBase, ResourceJournalConsumer,
    ResourceJournalEvent,
)
from flux_journal.metrics.server import parse_listen
from flux_journal.metrics.state import JobTracker


def on_event(event: Optional[JournalEventBase], label: str) -> None:
    print(label, event)


def jobs(handle: object) -> List[str]:
    consumer: JournalConsumer = JournalConsumer(handle, full=False, since=1.5).start()
    first: Optional[JournalEvent] = consumer.poll(timeout=1.0)
    batch: List[Optional[JournalEvent]] = consumer.poll_batch(100, timeout=0.5)
    names: List[str] = [event.name for event in consumer.events(until_sentinel=True)]
    if first is not None:
        stamp: float = first.timestamp
        context: Dict[str, object] = first.context
        text: str = first.context_string
        spec: Optional[Dict[str, object]] = first.jobspec
        where: str = first.cursor
        empty: bool = first.is_empty()
    position: Optional[str] = consumer.cursor
    counts: Dict[str, int] = consumer.stats
    done: bool = consumer.history_complete
    consumer.stop()
    return names


def resources(handle: object) -> None:
    with ResourceJournalConsumer(handle, include_sentinel=True, allow={"drain"}) as consumer:
        same: ResourceJournalConsumer = consumer.set_callback(on_event, "resource")
        for event in consumer:
            if isinstance(event, ResourceJournalEvent):
                r: Optional[Dict[str, object]] = event.R
    replaced: List[str] = flux_journal.install(end_of_stream_callback=True)


def metrics() -> None:
    tracker = JobTracker()
    tracker.count_error("malformed_response")
    host, port = parse_listen("127.0.0.1:9464")
    number: int = port
'''

# Misuses, one per line marked "# error".
BAD_USE = '''
from flux_journal import JournalConsumer, ResourceJournalConsumer, install


def misuse(handle: object) -> None:
    consumer = JournalConsumer(handle).start()
    consumer.poll("soon")  # error
    print(consumer.poll().jobid)  # error
    ResourceJournalConsumer(handle, full=False)  # error
    install(True)  # error
    where: int = consumer.cursor  # error
    consumer.set_batch_callback(print, max_events="many")  # error
'''


def mypy(tmp_path, *args):
    """Run mypy from the checkout (its pyproject.toml configures it)."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache"), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_snippet(tmp_path, name, source):
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return mypy(tmp_path, "--strict", str(path))


def error_lines(output, name):
    return {
        int(match.group(1))
        for match in re.finditer(rf"^.*{re.escape(name)}:(\d+): error:", output, re.MULTILINE)
    }


def test_public_modules_are_annotated_and_check_clean(tmp_path):
    result = mypy(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout


def test_code_using_the_api_checks_clean(tmp_path):
    result = check_snippet(tmp_path, "good_use.py", GOOD_USE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_misuse_of_the_api_is_reported_where_it_is(tmp_path):
    result = check_snippet(tmp_path, "bad_use.py", BAD_USE)
    marked = {
        number
        for number, line in enumerate(BAD_USE.splitlines(), start=1)
        if line.endswith("# error")
    }
    assert len(marked) == 6
    assert error_lines(result.stdout, "bad_use.py") == marked, result.stdout + result.stderr
