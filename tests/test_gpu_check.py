"""benchmarks/gpu_check.py at tiny size on the CPU, so the GPU check cannot rot between GPU loans."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"
# what the GPU machine lacks: the script and the engine it imports must load without them
ABSENT_THERE = ("pymatgen", "matminer", "pooch", "hpsklearn", "hyperopt", "seaborn")


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=REPO, check=False)


def test_the_gpu_check_imports_without_the_packages_the_gpu_machine_lacks():
    blocker = (
        "import runpy, sys\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {ABSENT_THERE!r}:\n"
        "            raise ImportError(f'{name} is absent on the GPU machine')\n"
        "sys.meta_path.insert(0, Absent())\n"
        f"sys.argv = ['gpu_check.py', 'run', '--help']\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], capture_output=True, text=True, cwd=REPO, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "--reference" in done.stdout


def test_the_gpu_check_runs_on_cpu_and_compares_with_a_reference(tmp_path: Path, data_dir):
    inputs = tmp_path / "inputs"
    prepared = _script("prepare", "--out", str(inputs), "--rows", "300", "--data-dir", str(data_dir))
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    tiny = ["--inputs", str(inputs), "--device", "cpu", "--epochs", "2", "--speed-epochs", "1", "--steps", "3"]
    first = _script("run", *tiny, "--stack-sizes", "10,20", "--out", str(tmp_path / "first.json"))
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads((tmp_path / "first.json").read_text())

    assert report["rows"] == {"train": 300, "test": 300}
    assert report["correctness"]["rows"] == {"train": 270, "val": 30, "test": 300}
    for precision in ("fp32", "bf16"):
        row = report["correctness"][precision]
        assert 0 < row["val_mae"] < 1 and 0 < row["test_mae"] < 1 and row["epochs"] == 2
    # the bf16 run is a different computation: its numbers must differ from fp32's
    assert report["correctness"]["bf16"]["val_mae"] != report["correctness"]["fp32"]["val_mae"]

    engine = report["engine"]
    assert len(engine["epochs_run"]) == 4 and engine["same_epochs_as_eager"] and engine["resume_file_written"]
    assert engine["max_history_gap"] == 0.0 and engine["resumed_max_history_gap"] == 0.0  # on CPU both are eager

    cv = {(r["batch"], r["precision"]): r for r in report["speedup"]["cv"]}
    assert set(cv) == {(32, "fp32"), (256, "bf16")}
    for r in cv.values():
        assert r["ratio"] > 0 and r["fit_many_samples_per_s"] > 0
        assert r["max_val_gap"] < 1e-4, "stacked folds train like separate ones"
    assert [s["models"] for s in report["speedup"]["stacks"]] == [10, 20]
    step = report["speedup"]["step"]
    assert step["steps"] == 3 and step["eager"]["max_weight_gap"] == 0.0
    assert "cuda_graph" not in step, "the CUDA variants run on CUDA only"

    hours = report["projection"]["hours"]
    assert [h["epochs_per_fit"] for h in hours] == [300, 600, 1000]
    assert hours[0]["paper_configurations_h"] < hours[1]["paper_configurations_h"] < hours[2]["paper_configurations_h"]
    assert all(h["with_tl_freeze_sweep_h"] > h["paper_configurations_h"] for h in hours)

    again = _script("run", *tiny, "--sections", "correctness", "--reference", str(tmp_path / "first.json"),
                    "--out", str(tmp_path / "again.json"))
    assert again.returncode == 0, again.stderr[-2000:]
    checked = json.loads((tmp_path / "again.json").read_text())["correctness"]
    for precision in ("fp32", "bf16"):
        assert checked[precision]["within_tolerance"] is True
        assert checked[precision]["val_gap"] < 1e-6, "the same recipe and seed on the same device repeat"
    assert "speedup" not in json.loads((tmp_path / "again.json").read_text())
