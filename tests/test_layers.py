"""The packages depend on each other one way only (README, "Layout"): a test reads every import
statement of the toolkit, also those inside functions, and fails on one against the rules."""

from __future__ import annotations

import ast
import subprocess
import sys

from conftest import REPO

# package → the toolkit packages it may import. The bottom (overtone) imports none; configs are
# data; readers and networks do not know each other; the runtime knows neither; the stages sit
# on top; benchmarks measure everything.
ALLOWED = {
    "overtone": set(),
    "configs": {"overtone"},
    "corpora": {"overtone"},
    "encoders": {"overtone"},
    "objectives": {"overtone", "encoders"},
    "runtime": {"overtone"},
    "pretrain": {"overtone", "configs", "corpora", "encoders", "objectives", "runtime"},
    "finetune": {"overtone", "configs", "corpora", "encoders", "runtime"},
    "suite": {"overtone", "configs", "corpora", "encoders", "runtime", "pretrain", "finetune"},  # stages in a row
}
PACKAGES = set(ALLOWED) | {"benchmarks"}


def imports_of(path) -> set[str]:
    """The toolkit packages a module imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & PACKAGES


def test_every_import_follows_the_layers():
    broken = []
    for package, allowed in ALLOWED.items():
        for path in sorted((REPO / package).rglob("*.py")):
            extra = imports_of(path) - allowed - {package}
            broken += [f"{path.relative_to(REPO)} imports {name}" for name in sorted(extra)]
    assert not broken, "imports against the layers:\n" + "\n".join(broken)


def test_the_rule_catches_a_violation(tmp_path):
    """The reader above is not blind: an import inside a function is found."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from encoders.frontend import LogMel\n    import runtime.loop\n")
    assert imports_of(module) == {"encoders", "runtime"}


def test_a_reader_and_a_bundle_load_without_the_layers_above():
    """What the rules promise at run time, each in a clean interpreter: reading corpora pulls in
    no network and no JAX; loading a bundle no reader, trainer or checkpoint library."""
    checks = {
        "import corpora, corpora.nsynth, corpora.irmas, corpora.openmic, corpora.folder, corpora.pcm_cache": {
            "encoders",
            "objectives",
            "runtime",
            "pretrain",
            "finetune",
            "flax",
            "jax",
            "orbax",
        },
        "import encoders, encoders.bundle, encoders.pretrained": {
            "corpora",
            "runtime",
            "objectives",
            "pretrain",
            "finetune",
            "orbax",
            "grain",
        },
    }
    for statement, forbidden in checks.items():
        script = f"import sys\n{statement}\nprint(sorted({{m.split('.')[0] for m in sys.modules}}))"
        result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        loaded = set(ast.literal_eval(result.stdout.strip().splitlines()[-1]))
        assert not loaded & forbidden, f"{statement}: loaded {sorted(loaded & forbidden)}"
