"""``python -m bench``: an alias of ``python bench/compare.py``.

Run from the repository root; takes the same options (``--quick``,
``--jobs``, ``--scenarios``, ...).
"""

import glob
import os
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)

# ``-m`` puts the current directory (the checkout) first on sys.path.
# A checkout whose extension was never built in place (CI's clone, say,
# with the package pip-installed) would then shadow the installed
# flux_journal with one that cannot import: step aside for it, as
# ``python bench/compare.py`` does (bench_streams puts the checkout back
# if nothing else provides flux_journal).
if not glob.glob(os.path.join(ROOT, "flux_journal", "_core*.so")):
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != ROOT]

# bench/ has no __init__.py (pytest imports its files as top-level
# modules, as compare.py does): put it on the path for compare's imports.
sys.path.insert(0, BENCH_DIR)

from compare import main  # noqa: E402

sys.exit(main())
