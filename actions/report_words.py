"""The word lists of the family report's parsers, read from ``data/report/``.

The month names, relative-date phrases, number, scale, currency, deadline,
"I don't know" and correction words of the fourteen served languages are data,
reviewed like code, one YAML file per kind (each opens with comments on what
it holds and how it is matched). The ``actions/report_*`` modules keep the
logic and build their patterns from these lists when they are imported.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

#: Where the word lists live: ``data/report/`` in the repository.
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "report"


@lru_cache(maxsize=32)
def word_list(kind: str) -> Any:
    """The contents of ``data/report/<kind>.yml``, read once.

    Args:
        kind: The file's name without ``.yml`` (``"months"``, ``"currencies"`` ...).

    Returns:
        The parsed YAML, shared between callers: read it, never change it.
    """
    return yaml.safe_load((DATA_DIR / f"{kind}.yml").read_text(encoding="utf-8"))
