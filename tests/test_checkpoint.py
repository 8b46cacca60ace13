"""Checkpoints: safetensors weights and a JSON card; bad checkpoints are readable TlrlErrors."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tlrl import checkpoint
from tlrl.errors import TlrlError
from tlrl.featurize import ELEMNET_ELEMENTS, element_fractions
from tlrl.model import HIDDEN_WIDTHS, NN17
from tlrl.predict import predict_array


@pytest.fixture(scope="module")
def X(jarvis_slice) -> np.ndarray:
    return element_fractions(jarvis_slice["formula"].head(100))[0]


@pytest.fixture
def saved(tmp_path):
    model = NN17(86, seed=3)
    with torch.no_grad():  # non-zero biases, so that biases are checked too
        for layer in model.layers:
            layer.bias.uniform_(-0.1, 0.1)
    card = {"input": {"kind": "ef"}, "val_mae": 0.123, "history": {"epoch": [1, 2], "val_mae": [0.2, 0.1]}}
    return model, checkpoint.save(model, tmp_path / "model", card), card


def test_round_trip_keeps_weights_and_card(saved, X):
    model, model_dir, card = saved
    loaded, loaded_card = checkpoint.load(model_dir)
    assert isinstance(loaded, NN17) and loaded.n_inputs == 86 and not loaded.training
    for (name, a), (name_b, b) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert name == name_b and torch.equal(a, b), name
    np.testing.assert_array_equal(predict_array(loaded, X), predict_array(model, X))

    assert loaded_card["n_inputs"] == 86
    assert loaded_card["elements"] == list(ELEMNET_ELEMENTS)
    assert loaded_card["architecture"] == "NN-17 (ElemNet)"
    assert loaded_card["hidden_widths"] == list(HIDDEN_WIDTHS)
    assert loaded_card["dropout"] is False
    assert loaded_card["library_versions"] == checkpoint.library_versions()
    assert dt.datetime.fromisoformat(loaded_card["date"]).tzinfo is not None
    for key, value in card.items():
        assert loaded_card[key] == value
    # the card on disk is plain JSON
    assert json.loads((model_dir / "card.json").read_text()) == loaded_card


def test_weights_are_safetensors(saved):
    model, model_dir, _ = saved
    assert sorted(p.name for p in model_dir.iterdir()) == ["card.json", "model.safetensors"]
    tensors = load_file(str(model_dir / "model.safetensors"))
    state = model.state_dict()
    assert set(tensors) == set(state)
    assert all(torch.equal(tensors[k], state[k]) for k in state)


def test_other_widths_and_dropout_round_trip(tmp_path):
    model = NN17(1024, dropout=True, seed=5)
    loaded, card = checkpoint.load(checkpoint.save(model, tmp_path / "rep", {}))
    assert loaded.n_inputs == 1024 and loaded.dropout is True and card["n_inputs"] == 1024
    assert torch.equal(loaded.hidden[0].weight, model.hidden[0].weight)


def test_library_versions():
    versions = checkpoint.library_versions()
    assert {"tlrl", "torch", "numpy", "pandas", "scikit-learn", "python"} <= set(versions)
    assert versions["torch"] == torch.__version__
    assert all(isinstance(v, str) and v for v in versions.values())


def _assert_readable(exc: pytest.ExceptionInfo, *words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"


def test_missing_dir_is_a_tlrl_error(tmp_path):
    with pytest.raises(TlrlError) as exc:
        checkpoint.load(tmp_path / "nowhere")
    _assert_readable(exc, "nowhere", "not a tlrl checkpoint")


def test_missing_weights_is_a_tlrl_error(saved):
    _, model_dir, _ = saved
    (model_dir / "model.safetensors").unlink()
    with pytest.raises(TlrlError) as exc:
        checkpoint.load(model_dir)
    _assert_readable(exc, "model.safetensors")


def test_corrupt_weights_are_a_tlrl_error(saved):
    _, model_dir, _ = saved
    (model_dir / "model.safetensors").write_bytes(b"\x00\x13garbage, not a safetensors file" * 10)
    with pytest.raises(TlrlError) as exc:
        checkpoint.load(model_dir)
    _assert_readable(exc, "corrupt", str(model_dir))


def test_truncated_weights_are_a_tlrl_error(saved):
    _, model_dir, _ = saved
    path = model_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(TlrlError, match="corrupt"):
        checkpoint.load(model_dir)


def test_corrupt_card_is_a_tlrl_error(saved):
    _, model_dir, _ = saved
    (model_dir / "card.json").write_text("{not json")
    with pytest.raises(TlrlError, match="corrupt"):
        checkpoint.load(model_dir)


def test_weights_that_do_not_fit_the_card_are_a_tlrl_error(saved):
    _, model_dir, _ = saved
    card = json.loads((model_dir / "card.json").read_text())
    (model_dir / "card.json").write_text(json.dumps({**card, "n_inputs": 145}))
    with pytest.raises(TlrlError, match="corrupt"):
        checkpoint.load(model_dir)
