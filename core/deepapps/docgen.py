"""Regenerate ``docs/options.md`` from the first-party tasks' declarations.

``python -m deepapps.docgen [PATH]`` (default ``docs/options.md``); a test fails when the file
and the declarations differ, so the option reference can never drift from the code.
"""

from __future__ import annotations

import sys
from pathlib import Path


def first_party_markdown() -> str:
    from .cli_verbs import options_markdown
    from .plugins import get_plugins
    from .registry import registry

    first_party = {p.name for p in get_plugins() if p.module.startswith("deepapps_")}
    return options_markdown([t for t in registry.tasks() if t.plugin in first_party])


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "docs/options.md")
    target.write_text(first_party_markdown())
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
