"""The source model's training: a warm restart from an earlier stage keeps that stage on its card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tlrl import checkpoint
from tlrl.errors import TlrlError
from tlrl.featurize import ELEMNET_ELEMENTS
from tlrl.predict import predict_array
from tlrl.pretrain import history, pretrain, source_split, stages, train_source
from tlrl.profiles import get_profile


def test_a_second_stage_starts_from_the_first_and_keeps_its_card(tiny_source, data_dir, tmp_path):
    first = json.loads((tiny_source / "card.json").read_text())
    model, card = pretrain(tmp_path / "stage2", profile="smoke", data_dir=data_dir, init_from=tiny_source)
    assert card["init_from"]["test_mae"] == first["test_mae"]
    assert card["init_from"]["history"] == first["history"]
    assert card["train_config"]["lr"] == get_profile("smoke").pretrain_continue.lr
    start, _ = checkpoint.load(tiny_source)
    assert not torch.equal(start.layers[5].weight, model.layers[5].weight)  # it trained on
    # one epoch on from the first stage's weights beats the first stage's 2 epochs from scratch
    assert card["val_mae"] < first["val_mae"]

    # the chapter's view of the card: both stages, first to last, and one learning curve across them
    table = stages(card)
    assert list(table.index) == [1, 2] and list(table["epochs"]) == [2, 1] and list(table["device"]) == ["cpu"] * 2
    assert list(table["test MAE"]) == [first["test_mae"], card["test_mae"]]
    assert list(table["learning rate"]) == [first["train_config"]["lr"], card["train_config"]["lr"]]
    curve = history(card)
    assert list(curve["epoch"]) == [1, 2, 3] and list(curve["stage"]) == [1, 1, 2]
    assert list(curve["val_mae"]) == first["history"]["val_mae"] + card["history"]["val_mae"]


def test_a_restart_needs_the_same_split(tiny_source, data_dir, tmp_path):
    with pytest.raises(TlrlError, match="another dataset or split"):
        pretrain(tmp_path / "s", profile="smoke", data_dir=data_dir, seed=1, init_from=tiny_source)


def test_training_on_a_prepared_split_is_pretraining(tiny_source, data_dir, tmp_path, monkeypatch):
    """What a machine without pymatgen runs (features computed elsewhere) trains exactly as pretrain does."""
    split = source_split(profile="smoke", data_dir=data_dir)
    first = json.loads((tiny_source / "card.json").read_text())
    assert split.rows == first["rows"]

    def no_features(*args, **kwargs):
        raise AssertionError("train_source must not featurize")

    monkeypatch.setattr("tlrl.pretrain.element_fractions", no_features)
    model, card = train_source(tmp_path / "again", split, "smoke")
    assert card["val_mae"] == first["val_mae"] and card["test_mae"] == first["test_mae"]
    again, _ = checkpoint.load(tiny_source)
    assert torch.equal(again.layers[5].weight, model.layers[5].weight)


def test_a_source_trained_with_dropout_says_so_and_passes_none_on(data_dir, tmp_path):
    from tlrl.methods import METHODS, new_models
    from tlrl.representation import load_source

    split = source_split(profile="smoke", data_dir=data_dir)
    _, card = train_source(tmp_path / "dropout", split, "smoke", dropout=True)
    _, plain = train_source(tmp_path / "plain", split, "smoke")
    assert card["val_mae"] != plain["val_mae"], "dropout changed the training"
    source = load_source(tmp_path / "dropout")
    assert source.model.dropout and json.loads((tmp_path / "dropout" / "card.json").read_text())["dropout"]
    assert not any(m.dropout for m in new_models(METHODS["tl-finetune"], 86, 2, source, seed=0))


def test_the_source_rows_are_the_split_it_was_trained_on(tiny_source, data_dir):
    """The chapter's view of what the source saw: the card's split rebuilt, row for row."""
    from tlrl.pretrain import chemical_system, known_compounds, source_rows
    from tlrl.representation import load_source

    card = json.loads((tiny_source / "card.json").read_text())
    rows, X = source_rows(card, data_dir)
    split = source_split(profile="smoke", data_dir=data_dir)
    assert (X == split.X).all()
    for name, part in zip(("train", "validation", "test"), (split.train, split.val, split.test)):
        assert (rows.index[rows["split"] == name] == np.sort(part)).all()
        assert (rows.loc[np.sort(part), "target"].to_numpy(np.float32) == split.y[np.sort(part)]).all()

    model = load_source(tiny_source).model
    one = rows.iloc[[0]]
    table = known_compounds(model, rows, X, [one["formula"].iat[0], "Xe2F99"])
    assert table["reference"].iat[0] == one["target"].iat[0] and table["split"].iat[0] == one["split"].iat[0]
    assert table["entries"].tolist() == [1, 0] and table["split"].iat[1] == "not in the data"
    assert np.isnan(table["reference"].iat[1])
    assert table["predicted"].iat[0] == pytest.approx(predict_array(model, X[:1])[0], abs=1e-6)
    elements = tuple(el for el, x in zip(ELEMNET_ELEMENTS, X[0]) if x > 0)
    system = chemical_system(model, rows, X, elements)
    assert one["formula"].iat[0] in system.index
    assert set(system["split"]) <= {"train", "validation", "test"}
    with pytest.raises(TlrlError, match="86 input elements"):
        chemical_system(model, rows, X, ("Og",))


def test_known_compounds_match_compositions_not_spellings():
    """GaAs finds OQMD's As1Ga1, and of two polymorphs the lower value is the reference."""
    import pandas as pd

    from tlrl.featurize import element_fractions
    from tlrl.model import NN17
    from tlrl.pretrain import known_compounds

    rows = pd.DataFrame({"formula": ["As1Ga1", "Ga2As2", "N1Ga1"], "target": [-0.2, -0.35, -0.58],
                         "split": ["train", "validation", "test"]})
    X, _ = element_fractions(rows["formula"])
    table = known_compounds(NN17(86, seed=0), rows, X, ["GaAs", "GaN"])
    assert table["reference"].tolist() == [-0.35, -0.58] and table["entries"].tolist() == [2, 1]
    assert table["split"].tolist() == ["validation", "test"]
