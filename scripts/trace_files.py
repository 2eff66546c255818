"""Which of the toolkit's files a command runs, in the order a reader meets them.

    python scripts/trace_files.py pretrain --config=nsynth_mixup --workdir=/tmp/t --config.train.num_steps=2

runs `python -m MODULE ARGS` in this process under a profiler and prints every toolkit file one of
whose functions is called (module and class bodies — imports — are not counted), in order of the first
call, with the number of changes of folder along that order (a comprehension counts as part of
the code it is written in: one in a module body runs at import). This is how a newcomer tracing the
command by hand meets the code; issue 17 measured it before and after the data layer was made one.
"""

from __future__ import annotations

import atexit
import inspect
import runpy
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
COMPREHENSIONS = frozenset({"<genexpr>", "<listcomp>", "<dictcomp>", "<setcomp>"})
PACKAGES = ("overtone", "configs", "corpora", "encoders", "objectives", "runtime", "pretrain", "finetune", "suite")


def main() -> None:
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    module, args = sys.argv[1], sys.argv[2:]
    seen: dict[str, None] = {}  # insertion-ordered set
    roots = tuple(str(REPO / p) + "/" for p in PACKAGES)

    def profile(frame, event, arg):
        if event == "call":
            path = frame.f_code.co_filename
            code = frame.f_code  # functions only: module and class bodies (imports) have no new locals,
            # and a comprehension is part of the body it is written in (one at module level ran at import)
            function = code.co_flags & inspect.CO_NEWLOCALS and code.co_name not in COMPREHENSIONS
            if path.startswith(roots) and function and path not in seen:
                seen[path] = None

    def report() -> None:
        sys.setprofile(None)
        files = [str(Path(p).relative_to(REPO)) for p in seen]
        folders = [f.split("/")[0] if "/" in f else "." for f in files]
        changes = sum(a != b for a, b in zip(folders, folders[1:], strict=False))
        print(f"\n{len(files)} files, {changes} changes of folder, for: python -m {module} {' '.join(args)}")
        for i, name in enumerate(files, 1):
            print(f"{i:3d}  {name}")

    atexit.register(report)
    threading.setprofile(profile)
    sys.setprofile(profile)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
