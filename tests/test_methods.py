"""The ten configurations and the protocol, on real JARVIS slices under the smoke profile."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from tlrl import benchmark, checkpoint, methods, plan
from tlrl.cli import main
from tlrl.data import default_cache_dir
from tlrl.errors import TlrlError
from tlrl.methods import METHODS, build_inputs, cross_validate, get_method, prepare_data, run
from tlrl.model import NN17
from tlrl.profiles import get_profile
from tlrl.representation import load_source


@pytest.fixture(scope="module")
def smoke():
    return get_profile("smoke")


@pytest.mark.parametrize("slug", [s for s in METHODS if METHODS[s].learner == "nn17"])
def test_every_nn_method_runs_and_reports_sane_metrics(slug, jarvis_slice, tiny_source, smoke, tmp_path):
    m = run(slug, jarvis_slice, source=tiny_source, profile=smoke, out_dir=tmp_path)
    assert m["n_folds"] == smoke.n_folds == len(m["fold_val_mae"])
    assert m["n_train"] == 400 and m["n_test"] == 200
    assert np.isclose(m["cv_mae_mean"], np.mean(m["fold_val_mae"]))
    for key in ("cv_mae_mean", "test_mae", "test_mae_ensemble"):
        assert 0 < m[key] < 5, (key, m[key])  # eV/atom; JARVIS targets span −4.4 … 4.3
    if METHODS[slug].searches_layer:
        rung1 = [r for r in m["sweep"] if r["rung"] == 1]
        assert [r["layer"] for r in rung1] == list(smoke.layers)
        assert m["best_layer"] == min(rung1, key=lambda r: r["val_mae"])["layer"]  # 2 candidates: one rung
    else:
        assert m["sweep"] == []
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["test_mae"] == m["test_mae"]
    preds = pd.read_csv(tmp_path / "test_predictions.csv")
    assert len(preds) == 200
    assert np.isclose(np.mean(np.abs(preds.pred_best_fold - preds.target)), m["test_mae"], atol=1e-5)
    assert len(list(tmp_path.glob("fold_*/model.safetensors"))) == smoke.n_folds


@pytest.mark.parametrize("slug", ["sc-ml-ef", "sc-ml-pa"])
def test_automl_methods_plug_into_the_protocol(slug, jarvis_slice, smoke, tmp_path):
    m = run(slug, jarvis_slice, profile=smoke, out_dir=tmp_path)
    assert len(m["fold_val_mae"]) == smoke.n_folds
    assert m["best_model_class"]
    assert 0 < m["test_mae"] < 5
    assert len(pd.read_csv(tmp_path / "automl_trials.csv")) == smoke.automl_evals


def test_tl_finetune_starts_exactly_at_the_source(tiny_source, smoke):
    m = get_method("tl-finetune")
    source = load_source(tiny_source)
    (model,) = methods.new_models(m, 86, 1, source, seed=0)
    for a, b in zip(source.model.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def test_tlrl_copies_everything_but_a_fresh_first_layer(tiny_source, smoke):
    source = load_source(tiny_source)
    (model,) = methods.new_models(get_method("tlrl-dl-dense"), 512, 1, source, seed=0)
    fresh = NN17(512, seed=0)
    assert torch.equal(model.layers[0].weight, fresh.layers[0].weight)
    for src, dst in zip(source.model.layers[1:], model.layers[1:]):
        assert torch.equal(src.weight, dst.weight) and torch.equal(src.bias, dst.bias)
    assert all(p.requires_grad for p in model.parameters())  # nothing is frozen


def test_tl_freeze_really_freezes(jarvis_slice, tiny_source, smoke):
    m, source = get_method("tl-freeze"), load_source(tiny_source)
    train, test = prepare_data(jarvis_slice, smoke, seed=0)
    inputs = build_inputs(m, train, test, source, None, cache_dir=default_cache_dir())
    k = 8
    models, _, _ = cross_validate(m, inputs, source, smoke, seed=0, frozen=k)
    for model in models:
        for src, dst in zip(source.model.hidden[:k], model.hidden[:k]):
            assert torch.equal(src.weight, dst.weight)
        assert not torch.equal(source.model.hidden[k].weight, model.hidden[k].weight)


def test_transfer_beats_scratch_with_the_shipped_source(jarvis_slice):
    """The paper's claim in miniature: on 400 rows the OQMD source helps a lot."""
    profile = get_profile("smoke", train__max_epochs=8, train__patience=8)
    scratch = run("sc-dl-ef", jarvis_slice, profile=profile)
    transfer = run("tl-finetune", jarvis_slice, profile=profile)
    mean_predictor = np.mean(np.abs(jarvis_slice.target[400:] - jarvis_slice.target[:400].mean()))
    assert transfer["test_mae"] < 0.6 * scratch["test_mae"]
    assert transfer["test_mae"] < 0.5 * mean_predictor


def test_benchmark_writes_results_and_resumes(jarvis_slice, tiny_source, smoke, tmp_path, monkeypatch):
    slugs = ["sc-dl-ef", "rl-dl-relu"]
    results = benchmark.run_benchmark(jarvis_slice, tmp_path, smoke, source=tiny_source, methods=slugs)
    assert results["method"].tolist() == slugs
    assert set(benchmark.RESULT_COLUMNS) <= set(pd.read_csv(tmp_path / "results.csv").columns)
    sweep = pd.read_csv(tmp_path / "sweep.csv")
    assert sweep["layer"].tolist() == list(smoke.layers)
    assert sweep.columns.tolist() == methods.SWEEP_COLUMNS and set(sweep["search"]) == {"halving"}
    assert "SC:DL(EF)" in (tmp_path / "table2.md").read_text()

    calls, fit = [], plan._fit
    monkeypatch.setattr(plan, "_fit", lambda *a: calls.append(a[2]) or fit(*a))
    benchmark.run_benchmark(jarvis_slice, tmp_path, smoke, source=tiny_source, methods=slugs)
    assert calls == []  # both finished: nothing reruns
    (tmp_path / "runs" / "sc-dl-ef" / "metrics.json").unlink()
    benchmark.run_benchmark(jarvis_slice, tmp_path, smoke, source=tiny_source, methods=slugs)
    assert calls == ["sc-dl-ef"]  # only the unfinished one reruns


def test_fit_cli_writes_a_run_that_predict_accepts(jarvis_slice, tiny_source, tmp_path, capsys):
    csv = tmp_path / "data.csv"
    jarvis_slice.to_csv(csv, index=False)
    run_dir = tmp_path / "run"
    code = main(["fit", str(csv), "--method", "tlrl-dl-relu", "--layer", "8", "--source", str(tiny_source),
                 "--profile", "smoke", "-o", str(run_dir)])
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_layer"] == 8 and metrics["input"]["kind"] == "representation"

    inp = tmp_path / "in.csv"
    pd.DataFrame({"formula": ["NaCl", "Lu(MnGe)6", "Fe2O3"]}).to_csv(inp, index=False)
    out = tmp_path / "preds.csv"
    assert main(["predict", str(run_dir), str(inp), "-o", str(out)]) == 0
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["formula", "prediction", "std", "problem"]
    assert np.isfinite(preds.prediction).all() and (preds["std"] > 0).all()
    _, card = checkpoint.load(run_dir / "fold_0")
    assert card["input"]["layer"] == 8


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "nope"], "invalid choice: 'nope'"),
        (["--method", "rl-dl-relu", "--layer", "16"], "layer must be in 1..15"),
        (["--method", "rl-dl-relu", "--layer", "0"], "layer must be in 1..15"),
        (["--method", "sc-dl-ef", "--layer", "3"], "takes no --layer"),
        (["--method", "tl-finetune", "--source", "/nonexistent/source"], "does not exist"),
    ],
)
def test_fit_cli_errors(args, message, tmp_path, capsys):
    code = main(["fit", "jarvis_formation_energy", *args, "--profile", "smoke", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o" / "metrics.json").exists()


def test_source_of_the_wrong_input_kind_is_refused(tmp_path, capsys):
    checkpoint.save(NN17(145, seed=0), tmp_path / "pa_model", {"input": {"kind": "pa"}})
    code = main(["fit", "jarvis_formation_energy", "--method", "tl-finetune", "--source",
                 str(tmp_path / "pa_model"), "--profile", "smoke", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "must take EF" in err


def test_predict_cli_errors(tmp_path, capsys):
    inp = tmp_path / "in.csv"
    pd.DataFrame({"formula": ["NaCl"]}).to_csv(inp, index=False)
    assert main(["predict", str(tmp_path / "missing"), str(inp), "-o", str(tmp_path / "p.csv")]) == 2
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "card.json").write_text("{}")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"garbage")
    assert main(["predict", str(tmp_path / "bad"), str(inp), "-o", str(tmp_path / "p.csv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "not a tlrl checkpoint" in err[0] and "corrupt" in err[1]
    assert not (tmp_path / "p.csv").exists()


def test_shipped_source_model_is_in_the_package():
    from tlrl.pretrained import source_model

    model, card = source_model()
    assert model.n_inputs == 86 and card["input"]["kind"] == "ef"
    assert card["task"]["dataset"] == "oqmd_formation_enthalpy"
    assert card["test_mae"] < 0.1  # eV/atom on the held-out OQMD split


def test_unknown_profile_and_methods_fail_early(tmp_path):
    with pytest.raises(TlrlError, match="unknown profile"):
        get_profile("huge")
    with pytest.raises(TlrlError, match="unknown method"):
        benchmark.run_benchmark("jarvis_formation_energy", tmp_path, "smoke", methods=["sc-dl-ef", "bogus"])


def test_successive_halving_keeps_the_best_third_and_cv_search_tries_every_layer(jarvis_slice, tiny_source):
    halving = get_profile("smoke", layers=(2, 5, 8, 11, 15), halving_epochs=(1, 1, 1), n_folds=2)
    m = run("rl-dl-relu", jarvis_slice, source=tiny_source, profile=halving)
    sweep = pd.DataFrame(m["sweep"])
    assert sweep.groupby("rung")["layer"].count().tolist() == [5, 2]  # 5 -> ceil(5/3) = 2 -> 1
    rung1 = sweep[sweep.rung == 1].sort_values("val_mae")
    assert set(sweep[sweep.rung == 2]["layer"]) == set(rung1["layer"][:2])
    assert m["best_layer"] == sweep[sweep.rung == 2].sort_values("val_mae")["layer"].iloc[0]
    assert (sweep["folds"] == 1).all() and m["layer_search"] == "halving" and m["n_folds"] == 2
    halves = run("rl-dl-relu", jarvis_slice, source=tiny_source, profile=halving.with_(halving_eta=2))
    assert pd.DataFrame(halves["sweep"]).groupby("rung")["layer"].count().tolist() == [5, 3, 2]  # 5 -> 3 -> 2 -> 1

    exhaustive = run("rl-dl-relu", jarvis_slice, source=tiny_source, profile=halving.with_(layer_search="cv"))
    cv = pd.DataFrame(exhaustive["sweep"])
    assert cv["layer"].tolist() == [2, 5, 8, 11, 15] and (cv["folds"] == 2).all()
    assert exhaustive["best_layer"] == cv.sort_values("val_mae")["layer"].iloc[0]
    assert np.isclose(exhaustive["cv_mae_mean"], cv["val_mae"].min())  # the winner's CV is reused, not rerun


def test_tl_freeze_searches_the_number_of_frozen_layers(jarvis_slice, tiny_source, smoke):
    m = run("tl-freeze", jarvis_slice, source=tiny_source, profile=smoke)
    assert [r["layer"] for r in m["sweep"]] == list(smoke.layers)
    assert {r["kind"] for r in m["sweep"]} == {"frozen"} and m["best_layer"] in smoke.layers


def test_peer_row_and_paired_difference_in_the_benchmark(jarvis_slice, tiny_source, smoke, tmp_path):
    slugs = ["tl-finetune", "tlrl-dl-relu", "peer-hgb-pa"]
    results = benchmark.run_benchmark(jarvis_slice, tmp_path, smoke, source=tiny_source, methods=slugs)
    assert results.set_index("method").loc["peer-hgb-pa", "category"] == "peer"
    assert "peer" not in set(benchmark.category_winners(results)["group"])
    paired = json.loads((tmp_path / "paired.json").read_text())
    runs = {r["method"]: r for r in benchmark.load_runs(tmp_path)}
    expected = np.subtract(runs["tlrl-dl-relu"]["fold_val_mae"], runs["tl-finetune"]["fold_val_mae"])
    assert np.allclose(paired["diffs"], expected) and np.isclose(paired["mean"], expected.mean())
    assert paired["verdict"] in ("lower", "higher", "not distinguishable")
    table = (tmp_path / "table2.md").read_text()
    assert "Peer: PA + HistGB" in table and "TL+RL:DL(ReLU) − TL:Fine-Tune over 2 folds" in table
    assert paired["verdict"] in table and "refuted" not in table and "standard errors from zero" in table
    assert "0.117 ± 0.005" not in table  # tlrl-dl-dense did not run here, so its paper row is absent
    assert "0.124 ± 0.006" in table  # the paper's TL+RL:DL(ReLU) CV stands beside ours


def test_paired_difference_verdicts():
    def results(tl, tlrl):
        rows = [("tl-finetune", "TL", tl), ("tlrl-dl-dense", "TL+RL", tlrl)]
        return pd.DataFrame([{"method": s, "category": c, "fold_val_mae": f, "cv_mae_mean": np.mean(f),
                              "n_train": 100} for s, c, f in rows])

    assert benchmark.paired_difference(results([0.12, 0.13, 0.11], [0.10, 0.11, 0.09]))["verdict"] == "lower"
    assert benchmark.paired_difference(results([0.10, 0.11, 0.09], [0.12, 0.13, 0.11]))["verdict"] == "higher"
    noisy = benchmark.paired_difference(results([0.12, 0.10, 0.11], [0.10, 0.12, 0.11]))
    assert noisy["verdict"] == "not distinguishable" and np.isclose(noisy["mean"], 0.0)


def test_each_configuration_trains_at_its_own_learning_rate_and_weight_decay(
    jarvis_slice, tiny_source, smoke, monkeypatch
):
    quick = get_profile("quick")
    lrs = {slug: methods.training_profile(m, quick).train.lr for slug, m in METHODS.items() if m.learner == "nn17"}
    assert lrs["tl-finetune"] == lrs["tl-freeze"] == quick.transfer_lr < quick.train.lr
    assert lrs["sc-dl-pa"] == quick.scratch_lr > quick.train.lr
    assert lrs["sc-dl-ef"] == quick.scratch_ef_train["lr"] != quick.scratch_lr
    assert lrs["tlrl-dl-relu"] == lrs["rl-dl-dense"] == quick.train.lr  # a random first layer: the general rate
    assert methods.training_profile(get_method("sc-dl-ef"), quick).train.max_epochs == quick.scratch_max_epochs
    trains = {slug: methods.training_profile(m, quick).train for slug, m in METHODS.items() if m.learner == "nn17"}
    ef = trains.pop("sc-dl-ef")
    assert (ef.weight_decay, ef.batch_size) == (quick.scratch_ef_train["weight_decay"], 64)
    assert ef.weight_decay != quick.train.weight_decay and ef.batch_size != quick.train.batch_size
    # SC:DL(PA) included: only SC:DL(EF) takes those
    assert {(t.weight_decay, t.batch_size) for t in trains.values()} == {(quick.train.weight_decay, 256)}
    longer = methods.training_profile(get_method("sc-dl-ef"), quick.with_(scratch_ef_train={"max_epochs": 60})).train
    assert longer.max_epochs == longer.patience == 60  # a longer cosine run keeps no early stopping
    full = get_profile("full")
    assert all(methods.training_profile(m, full) == full for m in METHODS.values())

    seen = []
    real = methods.fit_many
    monkeypatch.setattr(methods, "fit_many",
                        lambda *a, **k: seen.append((a[5].lr, a[5].weight_decay, a[5].batch_size)) or real(*a, **k))
    profile = smoke.with_(transfer_lr=3e-4, scratch_lr=3e-3, scratch_ef_train={"weight_decay": 0.5, "batch_size": 64},
                          train__weight_decay=0.05)
    run("tl-finetune", jarvis_slice, source=tiny_source, profile=profile)
    run("sc-dl-ef", jarvis_slice, profile=profile)
    run("sc-dl-pa", jarvis_slice, profile=profile)
    assert seen == [(3e-4, 0.05, 128), (3e-3, 0.5, 64), (3e-3, 0.05, 128)]
