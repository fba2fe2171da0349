"""pytest for mutmut: every failure exits 1.

mutmut 2 counts only exit code 1 as a failing run, so a mutant that stops a module importing
(pytest exits 2) or leaves nothing to collect (5) would read as a survivor.
"""

from __future__ import annotations

import sys

import pytest

if __name__ == "__main__":
    sys.exit(0 if pytest.main(sys.argv[1:]) == 0 else 1)
