"""``python -m flux_journal``: the ``flux-journal`` command."""

import sys

from flux_journal.cli import main

if __name__ == "__main__":
    sys.exit(main())
