"""`python -m benchmarks` stays runnable (its numbers are quoted in the README, never asserted)."""

import json
import subprocess
import sys

import pytest
from conftest import REPO


def test_benchmark_cli_writes_json_and_markdown(tmp_path):
    out, table = tmp_path / "bench.json", tmp_path / "bench.md"
    command = [
        sys.executable,
        "-m",
        "benchmarks",
        "--parts=embed,frontend,layers",
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
    layers = results["layers_compact"]
    assert [row["layer"] for row in layers] == [
        "96×64, 1→32",
        "48×32, 32→64",
        "24×16, 64→128",
        "12×8, 128→256",
        "6×4, 256→256",
    ]
    assert all(v > 0 for row in layers for v in row["ours"].values())


@pytest.mark.parametrize("flag", ["out", "markdown"])
def test_an_output_path_it_could_not_write_is_refused_before_any_timing(flag, tmp_path):
    """A missing folder (or a folder given as the file) is found at the start, not after the races."""
    for path in (tmp_path / "missing" / "bench.txt", tmp_path):
        command = [sys.executable, "-m", "benchmarks", "--parts=train", f"--{flag}={path}"]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert f"--{flag}: its folder must exist and be writable, and it must not be a folder" in result.stderr
        assert "| train" not in result.stdout  # nothing was measured


def test_the_accelerator_check_measures_both_dtypes_and_extrapolates_an_epoch(embedded_cache, monkeypatch):
    """`--accelerator`'s measurements, run here on the CPU (they are the same on a GPU): every
    step in both dtypes, the pipeline as a multiple of the step, the epoch from the slower. On
    logmel_stats, whose four steps compile in seconds (compact's took ~25 s; compact's
    training step is the one every pretraining test compiles)."""
    from benchmarks.accelerator import NSYNTH_TRAIN_NOTES, check

    monkeypatch.setenv("OVERTONE_CACHE", str(embedded_cache))
    results, rows = check(["logmel_stats"], batch=4, rounds=1, pipeline_batches=2, matmul_size=256)
    pipeline, peaks = results["pipeline_cache_clips_per_second"], results["matmul_gflops_per_second"]
    assert pipeline > 0 and set(peaks) == {"float32", "bfloat16"} and min(peaks.values()) > 0
    for dtype in ("float32", "bfloat16"):
        for kind in ("train", "nsynth_mixup"):
            entry = results[f"{kind}_logmel_stats_{dtype}"]
            assert entry["examples_per_second"] > 0 and entry["gflops_per_second"] > 0
            assert entry["mfu"] == pytest.approx(entry["gflops_per_second"] / peaks[dtype], rel=1e-12)
        rate = results[f"nsynth_mixup_logmel_stats_{dtype}"]["examples_per_second"]
        expected = NSYNTH_TRAIN_NOTES / min(rate, pipeline) / 60
        assert results[f"epoch_logmel_stats_{dtype}_minutes"] == pytest.approx(expected, rel=1e-12)
    assert len(rows) == 2 + 4 + 2 and all(row.startswith("| ") for row in rows)


@pytest.mark.parametrize(
    ("parts", "names", "accelerator", "says"),
    [
        ({"bogus"}, ["compact"], False, "unknown part 'bogus'"),
        ({"train"}, [], False, "--encoders is empty"),
        ({"train"}, ["nosuch"], False, "unknown encoder 'nosuch'"),
        (set(), ["sinc_zhong"], True, "sinc_zhong takes waveforms"),
        ({"layers"}, ["logmel_stats"], False, "convolutions of compact and vggish, not of 'logmel_stats'"),
    ],
)
def test_a_selection_that_would_measure_nothing_or_fail_halfway_is_one_line(parts, names, accelerator, says):
    from benchmarks.__main__ import check_selection

    with pytest.raises((KeyError, ValueError), match=says):
        check_selection(parts, names, accelerator)
    check_selection({"layers", "train"}, ["compact", "vggish"], False)  # what the README runs passes
