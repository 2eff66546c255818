"""`python -m benchmarks` stays runnable (its numbers are quoted in the README, never asserted)."""

import json
import subprocess
import sys

from conftest import REPO


def test_benchmark_cli_writes_json_and_markdown(tmp_path):
    out, table = tmp_path / "bench.json", tmp_path / "bench.md"
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "--parts=embed,frontend",
        "--encoders=compact",
        "--batch_size=4",
        "--rounds=1",
        f"--out={out}",
        f"--markdown={table}",
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["embed_compact"]["overtone"]["examples_per_second"] > 0
    assert 0 < results["embed_compact"]["overtone"]["mfu"] < 1.5
    assert results["frontend"]["max_abs_deviation_from_vggish_recipe"]["float64"] < 1e-4
    assert "| embed compact, batch 4 | overtone |" in table.read_text()
