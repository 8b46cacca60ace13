"""The training engine: fit, early stopping, repeatability, fit_many ≡ separate fits, resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from tlrl.data import cv_folds
from tlrl.errors import TlrlError
from tlrl.featurize import element_fractions
from tlrl.model import NN17, activations
from tlrl.predict import predict_array
from tlrl.train import FitResult, TrainConfig, _StackedTrainer, fit, fit_many, pick_device, supports_bf16

CFG = TrainConfig(batch_size=128, lr=1e-3, max_epochs=3, patience=50, progress=False)
# fit_many against separate trainings: on CPU they agree bit for bit (the stacked
# matmuls are per-model gemms); the tolerance leaves room for other BLAS/GPU kernels.
RTOL, ATOL = 1e-4, 1e-5



@pytest.fixture(scope="module")
def ef(jarvis_slice):
    """EF features and targets of the first 301 train rows of the JARVIS slice."""
    train = jarvis_slice[jarvis_slice.split == "train"].head(301)
    X, keep = element_fractions(train["formula"])
    return X, train["target"].to_numpy(np.float32)[keep]


@pytest.fixture(scope="module")
def fitted(ef) -> tuple[NN17, FitResult]:
    """One 3-epoch fit on 200 train / 101 val rows."""
    X, y = ef
    model = NN17(86, seed=0)
    return model, fit(model, X[:200], y[:200], X[200:], y[200:], CFG)


def _weights(model: NN17) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _assert_weights_close(a: NN17, b: NN17, atol: float = ATOL) -> None:
    for k, (p, q) in enumerate(zip(a.parameters(), b.parameters(), strict=True)):
        torch.testing.assert_close(p, q, rtol=RTOL, atol=atol, msg=lambda m, k=k: f"tensor {k}: {m}")


def _assert_history_close(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["epoch"]) == list(b["epoch"])
    np.testing.assert_allclose(a[["train_mae", "val_mae"]], b[["train_mae", "val_mae"]], rtol=RTOL, atol=ATOL)


def test_weight_decay_trains_with_adamw_and_pulls_the_weights_toward_zero(ef, fitted):
    X, y = ef
    plain, _ = fitted
    model = NN17(86, seed=0)
    result = fit(model, X[:200], y[:200], X[200:], y[200:], CFG.with_(weight_decay=30.0))
    assert result.config["weight_decay"] == 30.0
    # decoupled decay shrinks every weight by (1 - lr * wd) = 3 % a step, over 6 steps here
    norm = [sum(float(p.detach().norm() ** 2) for p in m.parameters()) for m in (model, plain)]
    assert norm[0] < 0.9 * norm[1]
    assert np.isfinite(result.history["val_mae"]).all()


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(None).type in ("cpu", "cuda", "mps")


# --- fit ---------------------------------------------------------------------------------
def test_history_has_one_row_per_epoch(fitted):
    _, result = fitted
    h = result.history
    assert list(h.columns) == ["epoch", "train_mae", "val_mae"]
    assert list(h["epoch"]) == [1, 2, 3]
    assert np.isfinite(h[["train_mae", "val_mae"]].to_numpy()).all()
    assert h["train_mae"].iloc[-1] < h["train_mae"].iloc[0]  # it learns something
    assert result.config["batch_size"] == 128 and result.seconds > 0


def test_best_weights_are_restored(ef, fitted):
    X, y = ef
    model, result = fitted
    h = result.history
    assert result.best_val_mae == pytest.approx(h["val_mae"].min(), abs=1e-7)
    assert result.best_epoch == int(h.loc[h["val_mae"].idxmin(), "epoch"])
    val_mae = float(np.mean(np.abs(predict_array(model, X[200:]) - y[200:])))
    assert val_mae == pytest.approx(result.best_val_mae, abs=1e-5)


def test_best_weights_are_restored_when_the_best_epoch_is_not_the_last(ef):
    X, y = ef
    # a large step size makes the val MAE bounce; find an epoch that is worse than the best
    model = NN17(86, seed=0)
    result = fit(model, X[:200], y[:200], X[200:], y[200:], CFG.with_(lr=3e-2, max_epochs=4, batch_size=100))
    assert result.best_epoch < 4, "precondition: the last epoch should not be the best"
    val_mae = float(np.mean(np.abs(predict_array(model, X[200:]) - y[200:])))
    assert val_mae == pytest.approx(result.best_val_mae, abs=1e-5)
    assert val_mae < result.history["val_mae"].iloc[-1]


def test_early_stopping_after_patience_epochs_without_improvement(ef):
    X, y = ef
    # lr = 0: the val MAE of epoch 1 is never beaten, so it stops after 1 + patience epochs
    model = NN17(86, seed=0)
    before = _weights(model)
    result = fit(model, X[:128], y[:128], X[200:], y[200:], CFG.with_(lr=0.0, patience=2, max_epochs=20))
    assert len(result.history) == 3
    assert result.best_epoch == 1
    assert result.history["val_mae"].nunique() == 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_fit_is_repeatable_and_seeded(ef, fitted):
    X, y = ef
    model0, result0 = fitted
    again = NN17(86, seed=0)
    result = fit(again, X[:200], y[:200], X[200:], y[200:], CFG)
    pd.testing.assert_frame_equal(result.history, result0.history, check_exact=True)
    assert all(torch.equal(a, b) for a, b in zip(again.parameters(), model0.parameters(), strict=True))
    # another data-order seed, same init: another training
    other = NN17(86, seed=0)
    result = fit(other, X[:200], y[:200], X[200:], y[200:], CFG.with_(seed=1))
    assert not np.array_equal(result.history["train_mae"], result0.history["train_mae"])
    assert not torch.equal(other.hidden[0].weight, model0.hidden[0].weight)


def test_fit_is_fit_many_of_one(ef, fitted):
    X, y = ef
    model0, result0 = fitted
    model = NN17(86, seed=0)
    [result] = fit_many([model], X, y, [np.arange(200)], [np.arange(200, len(X))], CFG, seeds=[CFG.seed])
    pd.testing.assert_frame_equal(result.history, result0.history, check_exact=True)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model0.parameters(), strict=True))


def test_bad_arguments_raise(ef):
    X, y = ef
    models = [NN17(86), NN17(86)]
    with pytest.raises(ValueError, match="one train and one val"):
        fit_many(models, X, y, [np.arange(10)], [np.arange(10, 20)], CFG)
    with pytest.raises(ValueError, match="columns"):
        fit_many([NN17(32)], X, y, [np.arange(10)], [np.arange(10, 20)], CFG)
    with pytest.raises(ValueError, match="at least one"):
        fit_many([NN17(86)], X, y, [np.arange(10)], [np.arange(0)], CFG)


def test_bf16_autocast_trains_close_to_fp32_and_validates_in_fp32(ef):
    X, y = ef
    runs = {}
    for precision in ("fp32", "bf16"):
        model = NN17(86, seed=0)
        result = fit(model, X[:200], y[:200], X[200:], y[200:], CFG.with_(precision=precision))
        runs[precision] = (model, result)
    (m32, r32), (m16, r16) = runs["fp32"], runs["bf16"]
    assert not torch.equal(m32.layers[0].weight, m16.layers[0].weight)  # bf16 really ran
    assert all(p.dtype == torch.float32 for p in m16.parameters())  # weights stay fp32
    # the reported val MAE is the fp32 MAE of the restored best weights
    assert np.isclose(r16.best_val_mae, np.mean(np.abs(predict_array(m16, X[200:]) - y[200:])), atol=1e-6)
    assert abs(r16.best_val_mae - r32.best_val_mae) < 0.05 * r32.best_val_mae
    with pytest.raises(ValueError, match="precision"):
        fit(NN17(86), X[:200], y[:200], X[200:], y[200:], CFG.with_(precision="fp16"))


def test_bf16_is_native_on_cpus_and_on_cuda_from_ampere(monkeypatch):
    assert supports_bf16(torch.device("cpu"))
    assert not supports_bf16(torch.device("mps"))
    for capability, native in (((7, 5), False), ((8, 0), True), ((9, 0), True)):  # T4, A100, H100
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert supports_bf16(torch.device("cuda")) is native


def test_bf16_without_native_support_trains_in_fp32_and_says_so(ef, fitted, monkeypatch):
    """Colab's T4 refuses bf16 autocast: the quick profile's bf16 must fall back, not crash."""
    X, y = ef
    monkeypatch.setattr("tlrl.train.supports_bf16", lambda device: False)
    model = NN17(86, seed=0)
    with pytest.warns(UserWarning, match="no native bfloat16: training in fp32"):
        result = fit(model, X[:200], y[:200], X[200:], y[200:], CFG.with_(precision="bf16"))
    assert result.config["precision"] == "fp32"
    _assert_weights_close(model, fitted[0], atol=0)  # the very run of the fp32 recipe


# --- fit_many ≡ separate fits -----------------------------------------------------------
def test_fit_many_of_cv_folds_equals_separate_fits(ef):
    X, y = ef
    # 301 rows in 3 folds: train parts of 200, 201 and 201 rows (2 batches of 128 each),
    # so the shorter one is padded and masked inside the stack
    folds = cv_folds(len(X), 3, seed=0)
    assert sorted(len(tr) for tr, _ in folds) == [200, 201, 201]
    seeds = [11, 12, 13]
    stacked = [NN17(86, seed=k) for k in range(3)]
    cfg = CFG.with_(max_epochs=2)
    results = fit_many(stacked, X, y, [tr for tr, _ in folds], [va for _, va in folds], cfg, seeds=seeds)
    for k, (tr, va) in enumerate(folds):
        alone = NN17(86, seed=k)
        [single] = fit_many([alone], X, y, [tr], [va], cfg, seeds=[seeds[k]])
        _assert_history_close(results[k].history, single.history)
        assert results[k].best_epoch == single.best_epoch
        _assert_weights_close(stacked[k], alone)
    # the models did train differently
    assert not np.allclose(results[0].history["val_mae"], results[1].history["val_mae"])


def test_fit_many_of_inputs_with_different_widths_equals_separate_fits(ef):
    X, y = ef
    # a 32-wide representation (layer-16 pre-activations of another network) beside the 86 EF
    X32 = activations(NN17(86, seed=99), X, 16, "dense")
    tr, va = np.arange(200), np.arange(200, len(X))
    cfg = CFG.with_(max_epochs=2)
    stacked = [NN17(86, seed=0), NN17(32, seed=1)]
    results = fit_many(stacked, [X, X32], y, [tr, tr], [va, va], cfg, seeds=[5, 6])
    for k, (Xk, model) in enumerate(zip([X, X32], stacked, strict=True)):
        alone = NN17(Xk.shape[1], seed=k)
        [single] = fit_many([alone], Xk, y, [tr], [va], cfg, seeds=[5 + k])
        _assert_history_close(results[k].history, single.history)
        _assert_weights_close(model, alone)
    assert stacked[1].hidden[0].weight.shape == (1024, 32)


def test_a_stopped_model_leaves_the_stack_and_the_others_train_as_if_alone(ef):
    X, y = ef
    folds = cv_folds(len(X), 3, seed=1)
    seeds = [21, 22, 23]
    cfg = CFG.with_(patience=1, max_epochs=3)

    def models():
        out = [NN17(86, seed=k) for k in range(3)]
        with torch.no_grad():  # model 1 predicts NaN: its val MAE never improves
            out[1].output.bias.fill_(float("nan"))
        return out

    stacked = models()
    results = fit_many(stacked, X, y, [tr for tr, _ in folds], [va for _, va in folds], cfg, seeds=seeds)
    assert len(results[1].history) == 1 and results[1].best_epoch == 0
    assert results[1].best_val_mae == float("inf")
    assert all(len(results[k].history) > 1 for k in (0, 2)), "precondition: the others outlive model 1"
    for k in (0, 2):
        alone = models()[k]
        [single] = fit_many([alone], X, y, [folds[k][0]], [folds[k][1]], cfg, seeds=[seeds[k]])
        _assert_history_close(results[k].history, single.history)
        _assert_weights_close(stacked[k], alone)


def test_unequal_step_counts_still_train(ef):
    X, y = ef
    # 128 and 129 rows at batch 128: 1 versus 2 steps; the short model's 2nd step wraps around
    stacked = [NN17(86, seed=0), NN17(86, seed=1)]
    results = fit_many(
        stacked, X, y, [np.arange(128), np.arange(129)], [np.arange(200, 250)] * 2, CFG.with_(max_epochs=1)
    )
    assert all(len(r.history) == 1 and np.isfinite(r.best_val_mae) for r in results)


# --- resume ----------------------------------------------------------------------------
@pytest.mark.parametrize("dropout", [False, True])
def test_resume_after_an_interruption_repeats_the_uninterrupted_run(ef, tmp_path, monkeypatch, dropout):
    X, y = ef
    cfg = CFG.with_(batch_size=64, max_epochs=4, checkpoint_every_s=0.0)
    args = (X[:128], y[:128], X[200:], y[200:], cfg)
    whole = NN17(86, dropout=dropout, seed=0)
    expected = fit(whole, *args)

    resume = tmp_path / "resume.pt"
    train_epoch = _StackedTrainer._train_epoch
    calls = []

    def interrupted(self, *a, **kw):
        calls.append(1)
        if len(calls) == 3:  # the resume file holds the state after epoch 2
            raise KeyboardInterrupt
        return train_epoch(self, *a, **kw)

    monkeypatch.setattr(_StackedTrainer, "_train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fit(NN17(86, dropout=dropout, seed=0), *args, resume_path=resume)
    assert resume.is_file()
    monkeypatch.setattr(_StackedTrainer, "_train_epoch", train_epoch)

    resumed = NN17(86, dropout=dropout, seed=0)
    torch.manual_seed(12345)  # the global generator is put back from the file
    result = fit(resumed, *args, resume_path=resume)
    pd.testing.assert_frame_equal(result.history, expected.history, check_exact=True)
    assert (result.best_epoch, result.best_val_mae) == (expected.best_epoch, expected.best_val_mae)
    assert all(torch.equal(a, b) for a, b in zip(resumed.parameters(), whole.parameters(), strict=True))
    assert not resume.exists(), "a finished run removes its resume file"


def test_a_resume_file_from_another_run_is_refused(ef, tmp_path):
    X, y = ef
    resume = tmp_path / "resume.pt"
    resume.write_bytes(b"not a torch file")
    with pytest.raises(TlrlError, match="cannot resume"):
        fit(NN17(86), X[:64], y[:64], X[200:], y[200:], CFG.with_(max_epochs=1), resume_path=resume)
    # a file written for one model, read by a run of two
    cfg = CFG.with_(max_epochs=2, checkpoint_every_s=0.0)
    trainer = _StackedTrainer([NN17(86)], X, y, [np.arange(64)], [np.arange(200, 264)], cfg, None, resume)
    params = trainer._stack()
    state = {
        "epoch": 1,
        "step": 1,
        "active": [0],
        "best": [None],
        "best_val": [1.0],
        "best_epoch": [1],
        "wait": [0],
        "history": [[]],
        "seconds": 0.0,
    }
    trainer._save_state(state, params, trainer._new_optimizer(params))
    with pytest.raises(TlrlError, match="1 model"):
        fit_many([NN17(86), NN17(86)], X, y, [np.arange(64)] * 2, [np.arange(200, 264)] * 2, cfg, resume_path=resume)
