"""The plan (tlrl.plan): a search's rungs as steps of fits, features shared between configurations, and a
benchmark or curve cut short mid-search resumes fit by fit, with the numbers of an uncut run."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tlrl import curve, plan
from tlrl.benchmark import run_benchmark
from tlrl.errors import TlrlError
from tlrl.methods import Fit, FitResult, get_method, protocol
from tlrl.profiles import get_profile
from tlrl.train import TrainConfig


def _result(mae: float, folds: int = 1) -> FitResult:
    return FitResult([mae] * folds, 1.0, 10, {})


def test_halving_plans_each_rung_from_the_last_and_cross_validates_the_winner():
    quick = get_profile("quick")
    steps = protocol(get_method("rl-dl-dense"), "rl-dl-dense", quick)
    first = next(steps)
    assert [f.layer for f in first] == list(range(1, 16))
    assert {(f.folds, f.epochs, f.rung) for f in first} == {(1, 3, 1)}
    second = steps.send([_result(abs(f.layer - 7) / 10) for f in first])  # layer 7 best, then 6 and 8, ...
    assert sorted(f.layer for f in second) == [5, 6, 7, 8, 9] and {(f.folds, f.epochs) for f in second} == {(1, 6)}
    final = steps.send([_result(0.5 if f.layer == 9 else 0.9) for f in second])
    assert final == [Fit(9)] and final[0].folds is None
    with pytest.raises(StopIteration) as stop:
        steps.send([_result(0.1, quick.n_folds)])
    chosen, layer, sweep = stop.value.value
    assert chosen == Fit(9) and layer == 9 and len(sweep) == 20 and sweep[-1]["rung"] == 2


def test_cv_search_fits_every_candidate_at_once_and_tests_the_best():
    prof = get_profile("smoke").with_(layer_search="cv", layers=(2, 5, 9))
    steps = protocol(get_method("tl-freeze"), "tl-freeze", prof)
    fits = next(steps)
    assert [(f.layer, f.folds, f.search) for f in fits] == [(2, None, "cv"), (5, None, "cv"), (9, None, "cv")]
    with pytest.raises(StopIteration) as stop:
        steps.send([_result(m, prof.n_folds) for m in (0.3, 0.2, 0.4)])
    chosen, layer, sweep = stop.value.value
    assert chosen is fits[1] and layer == 5 and [row["val_mae"] for row in sweep] == [0.3, 0.2, 0.4]


def test_configurations_on_one_layer_share_its_activation_task(jarvis_slice, tmp_path):
    job = plan.Job(get_profile("smoke"), 0, None, None, ("rl-dl-relu", "tlrl-dl-relu", "rl-dl-dense", "sc-dl-pa"))
    drivers = plan.benchmark_plan(job, jarvis_slice, tmp_path, job.methods)
    needs = {slug: sorted(n.key for t in next(d) for n in t.needs) for slug, d in drivers.items()}
    assert needs == {"rl-dl-relu": ["features/relu-L15", "features/relu-L8"],
                     "tlrl-dl-relu": ["features/relu-L15", "features/relu-L8"],
                     "rl-dl-dense": ["features/dense-L15", "features/dense-L8"], "sc-dl-pa": ["features/pa"]}


def _cut_after(monkeypatch, module, name: str, n: int) -> list:
    """Let ``module.name`` run ``n`` times, then raise; returns the list of its calls' arguments."""
    calls, real = [], getattr(module, name)

    def cut(*args):
        if len(calls) == n:
            raise RuntimeError("cut")
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(module, name, cut)
    return calls


def test_a_benchmark_cut_mid_search_resumes_fit_by_fit(jarvis_slice, tmp_path, monkeypatch):
    kw = {"profile": "smoke", "methods": ["rl-dl-relu"]}
    whole = run_benchmark(jarvis_slice, tmp_path / "whole", **kw)
    with monkeypatch.context() as m:
        _cut_after(m, plan, "_fit", 1)
        with pytest.raises(RuntimeError, match="cut"):
            run_benchmark(jarvis_slice, tmp_path / "cut", **kw)
    assert [p.name for p in (tmp_path / "cut" / "tasks" / "rl-dl-relu").iterdir()] == ["halving-r1-L8"]
    calls = _cut_after(monkeypatch, plan, "_fit", 99)
    again = run_benchmark(jarvis_slice, tmp_path / "cut", **kw)
    assert [c[3].name for c in calls] == ["halving-r1-L15", f"final-L{int(whole.best_layer[0])}"]
    assert not (tmp_path / "cut" / "tasks").exists()
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), whole.drop(columns="seconds"))


def _no_fold_maes(path):
    record = json.loads((path / "fit.json").read_text())
    (path / "fit.json").write_text(json.dumps(record | {"fold_val_mae": []}))


DAMAGES = {
    "fit.json cut": lambda path: (path / "fit.json").write_text((path / "fit.json").read_text()[:20]),
    "test.parquet cut": lambda path: (path / "test.parquet").write_bytes((path / "test.parquet").read_bytes()[:20]),
    "test.parquet gone": lambda path: (path / "test.parquet").unlink(),
    "history.csv gone": lambda path: (path / "history.csv").unlink(),
    "no fold MAEs": _no_fold_maes,
}


@pytest.fixture(scope="module")
def cut_benchmark(jarvis_slice, tmp_path_factory):
    """A TL:Fine-Tune benchmark whose one fit is written, stopped before its configuration ended; and the whole run."""
    base = tmp_path_factory.mktemp("cut")
    kw = {"profile": "smoke", "methods": ["tl-finetune"]}
    whole = run_benchmark(jarvis_slice, base / "whole", **kw)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(plan, "write_run", lambda *a: (_ for _ in ()).throw(RuntimeError("cut")))
        with pytest.raises(RuntimeError, match="cut"):
            run_benchmark(jarvis_slice, base / "cut", **kw)
    return base / "cut", whole


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_fit_runs_again(cut_benchmark, jarvis_slice, tmp_path, damage):
    out, whole = cut_benchmark
    out = shutil.copytree(out, tmp_path / "cut")
    DAMAGES[damage](out / "tasks" / "tl-finetune" / "final")
    with pytest.warns(UserWarning, match=r"final is damaged \(\w+\); it runs again"):
        again = run_benchmark(jarvis_slice, out, profile="smoke", methods=["tl-finetune"])
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), whole.drop(columns="seconds"))
    assert not (out / "tasks").exists()


def test_unfinished_fits_without_a_record_or_behind_a_link_are_refused(cut_benchmark, jarvis_slice, tmp_path):
    out = shutil.copytree(cut_benchmark[0], tmp_path / "cut")
    (out / "provenance.json").unlink()
    with pytest.raises(TlrlError, match="holds unfinished fits but .* has no provenance.json"):
        run_benchmark(jarvis_slice, out, profile="smoke", seed=1, methods=["tl-finetune"])
    elsewhere = tmp_path / "elsewhere"
    (out / "tasks" / "tl-finetune").rename(elsewhere)
    (out / "tasks" / "tl-finetune").symlink_to(elsewhere)
    with pytest.raises(TlrlError, match="is a symbolic link"):
        run_benchmark(jarvis_slice, out, profile="smoke", methods=["tl-finetune"], force=True)
    assert (elsewhere / "final" / "fit.json").is_file()


def test_a_curve_fit_record_of_other_seeds_runs_again(jarvis_slice, tmp_path, monkeypatch):
    kw = {"sizes": (40,), "methods": ["rl-dl-dense"], "seeds": (0, 1), "profile": "smoke"}
    with monkeypatch.context() as m:
        _cut_after(m, curve._Curve, "fit", 1)
        with pytest.raises(RuntimeError, match="cut"):
            curve.run_curve(jarvis_slice, tmp_path, **kw)
    (record,) = (tmp_path / "tasks" / "40").rglob("*.json")
    record.write_text(json.dumps(json.loads(record.read_text()) | {"seeds": [0]}))
    with pytest.warns(UserWarning, match="r1-L8.json is damaged"):
        curve.run_curve(jarvis_slice, tmp_path, **kw)


def test_an_empty_method_list_and_a_closed_client_are_refused(jarvis_slice, tmp_path):
    from distributed import Client

    with pytest.raises(TlrlError, match="methods names no method"):
        run_benchmark(jarvis_slice, tmp_path / "a", profile="smoke", methods=[])
    client = Client(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    client.close()
    with pytest.raises(TlrlError, match="the Dask client is closed"):
        run_benchmark(jarvis_slice, tmp_path / "b", profile="smoke", methods=["sc-dl-ef"], client=client)
    assert list(tmp_path.iterdir()) == []


def test_force_drops_the_unfinished_fits(jarvis_slice, tmp_path, monkeypatch):
    kw = {"profile": "smoke", "methods": ["rl-dl-relu"]}
    with monkeypatch.context() as m:
        _cut_after(m, plan, "_fit", 1)
        with pytest.raises(RuntimeError, match="cut"):
            run_benchmark(jarvis_slice, tmp_path, **kw)
    calls = _cut_after(monkeypatch, plan, "_fit", 99)
    run_benchmark(jarvis_slice, tmp_path, force=True, **kw)
    assert [c[3].name for c in calls][:2] == ["halving-r1-L8", "halving-r1-L15"] and len(calls) == 3


def test_a_curve_unit_cut_mid_search_resumes_fit_by_fit(jarvis_slice, tmp_path, monkeypatch):
    kw = {"sizes": (40,), "methods": ["rl-dl-dense"], "seeds": (0, 1), "profile": "smoke"}
    whole = curve.run_curve(jarvis_slice, tmp_path / "whole", **kw)
    with monkeypatch.context() as m:
        _cut_after(m, curve._Curve, "fit", 1)
        with pytest.raises(RuntimeError, match="cut"):
            curve.run_curve(jarvis_slice, tmp_path / "cut", **kw)
    assert [p.name for p in (tmp_path / "cut" / "tasks" / "40").rglob("*.json")] == ["r1-L8.json"]
    calls = _cut_after(monkeypatch, curve._Curve, "fit", 99)
    again = curve.run_curve(jarvis_slice, tmp_path / "cut", **kw)
    assert [c[3].name for c in calls][0] == "r1-L15" and all(c[3].name.startswith("final") for c in calls[1:])
    assert not (tmp_path / "cut" / "tasks").exists()
    pd.testing.assert_frame_equal(again.drop(columns="seconds"), whole.drop(columns="seconds"))


def test_a_curve_fit_stacks_its_seeds_and_tests_only_when_final(jarvis_slice):
    from tlrl.methods import prepare_data

    prof = get_profile("smoke")
    data = curve.build_curve(*prepare_data(jarvis_slice, prof, 0), prof, None, ["sc-dl-ef"])
    config = TrainConfig(batch_size=16, lr=1e-3, max_epochs=2, patience=2, progress=False)
    rung = data.fit(get_method("sc-dl-ef"), 40, curve.CurveFit(None, (0, 1), config, rung=1))
    final = data.fit(get_method("sc-dl-ef"), 40, curve.CurveFit(None, (1, 0), config))
    assert rung["test_mae"] is None and rung["seeds"] == [0, 1] and final["seeds"] == [1, 0]
    assert np.allclose(final["val_mae"][::-1], rung["val_mae"]) and all(m > 0 for m in final["test_mae"])
