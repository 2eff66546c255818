"""The shell commands of README.md, as a reader copies them: every ```bash block, continuation
lines joined, comment-only lines dropped.

    python3 tests/readme_commands.py       # list them, numbered
    python3 tests/readme_commands.py 2     # print command 2 (what .ci/run executes)

Standard library only: .ci/run calls it before any environment exists.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```bash\n(.*?)^```", re.M | re.S)


def commands(text: str | None = None) -> list[str]:
    text = README.read_text(encoding="utf-8") if text is None else text
    out = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", "", block)
        out += [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    return out


if __name__ == "__main__":
    found = commands()
    if len(sys.argv) > 1:
        print(found[int(sys.argv[1]) - 1])
    else:
        for number, command in enumerate(found, 1):
            print(f"{number:3d}  {command}")
