"""NN-17: architecture, initialisation, dropout, activations and the TL / TL+RL weight rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from tlrl.featurize import element_fractions
from tlrl.model import HIDDEN_WIDTHS, N_HIDDEN, NN17, activations, copy_weights, freeze_first, weight_change
from tlrl.train import TrainConfig, fit

WIDTHS = [1024] * 4 + [512] * 3 + [256] * 3 + [128] * 3 + [64] * 2 + [32]



@pytest.fixture(scope="module")
def ef(jarvis_slice):
    """EF features and targets of the 600 train rows of the JARVIS slice."""
    train = jarvis_slice[jarvis_slice.split == "train"]
    X, keep = element_fractions(train["formula"])
    return X, train["target"].to_numpy(np.float32)[keep]


def _params_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


# --- architecture ----------------------------------------------------------------------
def test_seventeen_linear_layers_with_elemnet_widths():
    model = NN17(86, seed=0)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 17 == len(model.layers)
    assert list(HIDDEN_WIDTHS) == WIDTHS and N_HIDDEN == 16
    assert [layer.out_features for layer in model.layers] == [*WIDTHS, 1]
    assert [layer.in_features for layer in model.layers] == [86, *WIDTHS]
    assert model.layers[-1] is model.output


def test_parameter_count():
    assert sum(p.numel() for p in NN17(86).parameters()) == 4_631_361
    # only the first layer depends on the input width
    assert sum(p.numel() for p in NN17(1024).parameters()) == 4_631_361 + (1024 - 86) * 1024


def test_output_is_one_value_per_row(ef):
    X, _ = ef
    out = NN17(86, seed=0)(torch.as_tensor(X[:5]))
    assert out.shape == (5,)


# --- initialisation ----------------------------------------------------------------------
def test_init_is_keras_xavier_uniform_with_zero_biases():
    model = NN17(86, seed=0)
    for k, layer in enumerate(model.layers, start=1):
        w = layer.weight.detach().double()
        fan_out, fan_in = w.shape
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        assert torch.count_nonzero(layer.bias) == 0, f"layer {k} bias"
        assert w.abs().max() <= bound, f"layer {k} exceeds the Xavier bound"
        # a uniform(-b, b) sample: std b/sqrt(3); the sample variance has relative sd sqrt(0.8/n)
        n = w.numel()
        rel_var = w.var().item() / (bound**2 / 3) - 1
        assert abs(rel_var) < 5 * math.sqrt(0.8 / n) + 1e-3, f"layer {k}: variance off by {rel_var:.3f}"
        assert abs(w.mean().item()) < 5 * bound / math.sqrt(3 * n), f"layer {k}: mean not ~0"
        # it fills the range, i.e. it is uniform and not e.g. a normal with the same std
        if n >= 1000:
            assert w.abs().max() > 0.99 * bound


def test_seeded_init_is_repeatable():
    assert _params_equal(NN17(86, seed=3), NN17(86, seed=3))
    assert not torch.equal(NN17(86, seed=3).hidden[0].weight, NN17(86, seed=4).hidden[0].weight)


def test_reset_parameters_restores_the_seeded_init():
    model = NN17(86, seed=7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    model.reset_parameters(seed=7)
    assert _params_equal(model, NN17(86, seed=7))


# --- dropout -----------------------------------------------------------------------------
def test_dropout_is_off_by_default(ef):
    X = torch.as_tensor(ef[0][:64])
    model = NN17(86, seed=0)
    assert model.dropout is False
    model.train()
    assert torch.equal(model(X), model(X))


def test_dropout_on_changes_train_mode_outputs_only(ef):
    X = torch.as_tensor(ef[0][:64])
    model = NN17(86, dropout=True, seed=0)
    model.train()
    torch.manual_seed(0)
    assert not torch.equal(model(X), model(X))
    model.eval()
    assert torch.equal(model(X), model(X))
    # in eval mode the dropout model is the plain model
    plain = NN17(86, seed=0).eval()
    assert torch.equal(model(X), plain(X))


# --- activations -------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dense", "relu"])
def test_activation_shapes(ef, kind):
    X = ef[0][:50]
    model = NN17(86, seed=0)
    for layer in range(1, N_HIDDEN + 1):
        out = activations(model, X, layer, kind)
        assert out.shape == (50, WIDTHS[layer - 1]) and out.dtype == np.float32


def test_dense_is_the_pre_activation_and_relu_its_positive_part(ef):
    X = ef[0][:200]
    model = NN17(86, seed=0)
    for layer in (1, 5, 8, 15, 16):
        dense = activations(model, X, layer, "dense")
        relu = activations(model, X, layer, "relu")
        assert (dense < 0).any(), f"layer {layer}: no negative pre-activation"
        assert (relu >= 0).all()
        np.testing.assert_array_equal(relu, np.maximum(dense, 0))


def test_activations_match_the_forward_pass(ef):
    X = ef[0][:100]
    model = NN17(86, seed=0).eval()
    with torch.no_grad():
        # layer 1 by hand
        h1 = model.hidden[0](torch.as_tensor(X)).numpy()
        # the output layer applied to layer 16 is the model's prediction
        out = model.output(torch.as_tensor(activations(model, X, 16, "relu"))).squeeze(-1)
        np.testing.assert_allclose(out.numpy(), model(torch.as_tensor(X)).numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(activations(model, X, 1, "dense"), h1, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("layer", "kind"), [(0, "relu"), (17, "relu"), (-1, "dense"), (3, "tanh")])
def test_activations_reject_bad_layer_or_kind(layer, kind):
    with pytest.raises(ValueError):
        activations(NN17(86, seed=0), np.zeros((2, 86), np.float32), layer, kind)


def test_activations_do_not_depend_on_the_batch_size(ef):
    X = ef[0]
    model = NN17(86, seed=0)
    whole = activations(model, X, 9, "dense")
    batched = activations(model, X, 9, "dense", batch_size=7)
    np.testing.assert_allclose(batched, whole, rtol=1e-6, atol=1e-7)
    assert activations(model, X[:0], 9, "relu").shape == (0, 256)


# --- copy_weights and freeze_first --------------------------------------------------------
def test_full_copy_equals_the_source():
    source, target = NN17(86, seed=1), NN17(86, seed=2)
    copy_weights(source, target)
    assert _params_equal(source, target)


@pytest.mark.parametrize("n_inputs", [86, 1024])
def test_skip_first_keeps_layer_one_and_copies_the_rest(n_inputs):
    source = NN17(86, seed=1)
    target = NN17(n_inputs, seed=2)
    copy_weights(source, target, skip_first=True)
    fresh = NN17(n_inputs, seed=2)
    assert torch.equal(target.layers[0].weight, fresh.layers[0].weight)
    assert torch.equal(target.layers[0].bias, fresh.layers[0].bias)
    for k in range(1, 17):
        assert torch.equal(target.layers[k].weight, source.layers[k].weight), f"layer {k + 1}"
        assert torch.equal(target.layers[k].bias, source.layers[k].bias), f"layer {k + 1}"


def test_full_copy_into_another_input_width_is_an_error():
    target = NN17(1024, seed=2)
    before = [p.clone() for p in target.parameters()]
    with pytest.raises(ValueError, match="layer 1"):
        copy_weights(NN17(86, seed=1), target)
    assert all(torch.equal(a, b) for a, b in zip(before, target.parameters(), strict=True))


def test_copied_weights_are_not_shared():
    source, target = NN17(86, seed=1), NN17(86, seed=2)
    copy_weights(source, target)
    with torch.no_grad():
        target.hidden[3].weight.add_(1.0)
    assert not torch.equal(source.hidden[3].weight, target.hidden[3].weight)


def test_freeze_first_sets_requires_grad():
    model = NN17(86, seed=0)
    freeze_first(model, 8)
    assert [layer.weight.requires_grad for layer in model.hidden] == [False] * 8 + [True] * 8
    assert [layer.bias.requires_grad for layer in model.hidden] == [False] * 8 + [True] * 8
    assert model.output.weight.requires_grad
    freeze_first(model, 0)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("k", [-1, 17])
def test_freeze_first_rejects_out_of_range(k):
    with pytest.raises(ValueError):
        freeze_first(NN17(86), k)


def test_frozen_layers_do_not_move_in_training(ef):
    X, y = ef
    model = NN17(86, seed=0)
    freeze_first(model, 3)
    before = [p.detach().clone() for p in model.parameters()]
    cfg = TrainConfig(batch_size=64, lr=1e-3, max_epochs=1, progress=False)
    fit(model, X[:128], y[:128], X[128:192], y[128:192], cfg)
    after = list(model.parameters())
    # 2 tensors per layer: the first 3 layers' weights and biases are bit-identical
    for i in range(6):
        assert torch.equal(before[i], after[i]), f"frozen tensor {i} changed"
    for i in range(6, len(before)):
        assert not torch.equal(before[i], after[i]), f"trainable tensor {i} did not change"


# --- weight change -----------------------------------------------------------------------
def test_weight_change_is_the_relative_frobenius_distance_per_layer():
    source, model = NN17(86, seed=0), NN17(86, seed=1)
    copy_weights(source, model)
    assert np.array_equal(weight_change(source, model), np.zeros(17))
    with torch.no_grad():
        model.layers[4].weight.mul_(1.5)  # layer 5 moves by half its norm
        model.output.weight.copy_(-model.output.weight)  # the output layer by twice its norm
    change = weight_change(source, model)
    assert change[4] == pytest.approx(0.5) and change[16] == pytest.approx(2.0)
    assert np.count_nonzero(change) == 2


def test_weight_change_skips_a_first_layer_of_another_width_and_sees_training(ef):
    X, y = ef
    source, model = NN17(86, seed=0), NN17(1024, seed=1)
    copy_weights(source, model, skip_first=True)
    R = activations(source, X, 3, "dense")
    fit(model, R[:400], y[:400], R[400:], y[400:], TrainConfig(batch_size=64, max_epochs=2, patience=2,
                                                              progress=False))
    change = weight_change(source, model)
    assert math.isnan(change[0]) and np.all(change[1:] > 0) and np.all(np.isfinite(change[1:]))
