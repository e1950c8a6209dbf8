"""Progress bars for long work (tqdm; silent when DEEPAPPS_NO_PROGRESS=1 or not a terminal in CI)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any


def _disabled() -> bool:
    if os.environ.get("DEEPAPPS_NO_PROGRESS", "") in {"1", "true"}:
        return True
    return False


def progress(
    iterable: Iterable[Any] | None = None, total: int | None = None, desc: str = "", unit: str = "it", **kw
):
    """A tqdm bar on stderr (stdout stays clean for --json)."""
    from tqdm.auto import tqdm

    disable = kw.pop("disable", False) or _disabled()
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=disable,
        dynamic_ncols=True,
        **kw,
    )
