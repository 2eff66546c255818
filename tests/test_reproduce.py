"""docs/reproduce.md, run: every command of its shell blocks on the embedded stand-ins, a few
steps each, in order, one test per paper. `python -m pretrain|finetune` lines run in this
process (the stage's train function with the command's config, as the CLI builds it: the
`in_process` fixture); `finetune.compare` lines run as commands.

The size override, as the README test's: 2 steps of batch 8, the family probe on 32 + 32
notes, and the compact encoder for VGGish and for the `sinc` and `sinc_zhong` encoders of Zhong
et al.'s lines (`random:compact` for any `random:NAME`; a 2-step sinc run compiles its ResNet-34
for over a minute, and tests/test_encoders.py, test_zhong_recipe.py and test_pretrained.py
cover them).
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO
from readme_commands import commands
from test_readme import user_data  # noqa: F401 - /data as the examples imagine it

DOC = REPO / "docs" / "reproduce.md"
SIZE = ["--config.train.num_steps=2", "--config.train.batch_size=8"]
PRETRAIN_SIZE = [*SIZE, "--config.evaluator.max_examples=32"]
PAPERS = ("Zhong", "Taenzer", "Gururani")


def sections() -> dict[str, list[str]]:
    """The commands of each paper's section, by the first word of its heading after '## '."""
    text = DOC.read_text()
    found = {}
    for part in text.split("\n## ")[1:]:
        found[part.split()[0]] = commands(part)
    return found


def test_every_paper_has_its_commands_and_published_rows():
    from finetune.published import PUBLISHED

    found = sections()
    assert set(PAPERS) <= set(found) and all(found[p] for p in PAPERS)
    text = DOC.read_text()
    for key in PUBLISHED:  # each published entry is shown where its table is
        assert f"`{key}`" in text, f"docs/reproduce.md never names --published={key}"


def _as_test(command: str, data, root) -> tuple[str, str, str, list[str]] | None:
    """(stage, config spec, workdir, overrides) of a pretrain/finetune line, sized for the test;
    None for another command."""
    words = shlex.split(command.replace("/data/", f"{data}/"))
    if words[:2] != ["python", "-m"] or words[2] not in ("pretrain", "finetune"):
        return None
    flags = dict(w[2:].split("=", 1) for w in words[3:])
    spec, workdir = flags.pop("config").replace("encoder=sinc", "encoder=compact"), flags.pop("workdir")
    if spec == "zhong_pretrain":  # their ResNet-34 on waveforms: the compact CNN with its own front-end
        spec = "zhong_pretrain:encoder=compact"
    overrides = [f"--{k}={v}" for k, v in flags.items() if k != "encoder"]
    if "encoder" in flags:
        source = re.sub(r"^random:\w+", "random:compact", flags["encoder"])
        source = source if source.startswith("random:") else str(root / source)
        overrides.append(f"--config.encoder.source={source}")
    if words[2] == "pretrain":
        overrides += PRETRAIN_SIZE + ([] if ":encoder=" in spec else ["--config.encoder.name=compact"])
    else:
        overrides += SIZE
    return words[2], spec, str(root / workdir), overrides


@pytest.mark.parametrize("paper", PAPERS)
def test_the_commands_of_each_paper_run_in_order(paper, in_process, user_data, subprocess_env, tmp_path):  # noqa: F811
    ran = 0
    for command in sections()[paper]:
        sized = _as_test(command, user_data, tmp_path)
        if sized is None:
            assert command.startswith("python -m finetune.compare "), f"not run by this test: {command}"
            result = subprocess.run(
                [sys.executable, *shlex.split(command)[1:]],
                cwd=tmp_path,
                env=subprocess_env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
            out = tmp_path / dict(w[2:].split("=", 1) for w in shlex.split(command) if w.startswith("--out="))["out"]
            rows = json.loads((out / "compare.json").read_text())
            published = [r for r in rows if r.get("published")]
            assert len(rows) - len(published) >= 2 and (published or "--published" not in command)
        else:
            stage, spec, workdir, overrides = sized
            summary = in_process(stage, workdir, spec, *overrides)
            assert summary["final_step"] == (0 if "forest" in spec else 2), command  # a forest is fitted once
        ran += 1
    assert ran >= 3
