"""The source model: NN-17 trained on OQMD formation enthalpy from element fractions."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from tlrl import checkpoint
from tlrl.data import OQMD_DATASETS, OUTLIER_LIMIT_EV, filter_outliers, load_dataset
from tlrl.errors import TlrlError
from tlrl.featurize import ELEMENT_INDEX, element_fractions
from tlrl.model import NN17
from tlrl.outputs import claim_folder
from tlrl.predict import predict_array
from tlrl.profiles import Profile, get_profile
from tlrl.representation import load_source
from tlrl.train import device_name, fit, pick_device

SPLIT_NAMES = ("train", "validation", "test")


def split_train_val_test(n: int, seed: int, fractions=(0.8, 0.1, 0.1)) -> tuple[np.ndarray, ...]:
    """Seeded 80:10:10 row indices."""
    order = np.random.default_rng(seed).permutation(n)
    a = int(fractions[0] * n)
    b = a + int(fractions[1] * n)
    return order[:a], order[a:b], order[b:]


@dataclass
class SourceSplit:
    """EF features and targets of the source dataset, its seeded 80:10:10 split, and its row counts."""

    data: str
    X: np.ndarray
    y: np.ndarray
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    rows: dict


def source_split(
    data: str = "oqmd_formation_enthalpy", profile: str | Profile = "quick", data_dir: str | Path | None = None,
    seed: int = 0,
) -> SourceSplit:
    """The source dataset as EF, split 80:10:10 by ``seed``.

    OQMD's outliers (``|target| > 5`` eV/atom) are dropped, for OQMD only; every filter that drops
    rows says how many and why.
    """
    prof = get_profile(profile)
    df, n_outliers = load_dataset(data, data_dir), 0
    n_read = len(df)
    if str(data) in OQMD_DATASETS:
        df, n_outliers = filter_outliers(df)
        if n_outliers:
            warnings.warn(f"{n_outliers} of {n_read} rows of {data} dropped: |target| > {OUTLIER_LIMIT_EV:g} eV/atom, "
                          "OQMD's outlier rule", stacklevel=2)
    if prof.pretrain_rows is not None:
        df = df.sample(n=min(prof.pretrain_rows, len(df)), random_state=seed).reset_index(drop=True)
    X, keep = element_fractions(df["formula"]) if len(df) else (np.zeros((0, 86), np.float32), np.zeros(0, bool))
    y = df["target"].to_numpy(np.float32)[keep]
    tr, va, te = split_train_val_test(len(X), seed)
    if min(len(tr), len(va), len(te)) == 0:
        dropped = f" (of {n_read} read: {n_outliers} OQMD outliers and {int((~keep).sum())} unusable formulas dropped)"
        raise TlrlError(f"pretraining needs at least 10 usable rows for its 80:10:10 split; {data} has {len(X)}"
                        + (dropped if len(X) < n_read else ""))
    rows = {"train": len(tr), "val": len(va), "test": len(te), "outliers_dropped": n_outliers,
            "bad_formulas_dropped": int((~keep).sum())}
    return SourceSplit(data, X, y, tr, va, te, rows)


def pretrain(
    out_dir: str | Path,
    data: str = "oqmd_formation_enthalpy",
    profile: str | Profile = "quick",
    data_dir: str | Path | None = None,
    seed: int = 0,
    init_from: str | Path | None = None,
    force: bool = False,
) -> tuple[NN17, dict]:
    """Train the source model and save it with its card (its test MAE included).

    OQMD's outliers are filtered first; the split is a seeded 80:10:10 train/val/test.
    A finished source in ``out_dir`` is replaced only with ``force``; a folder of anything
    else, or one holding ``data`` or ``init_from``, is refused before any work.
    With ``init_from`` (a source checkpoint trained on the same split) training restarts
    from its weights with the profile's ``pretrain_continue`` recipe, and the card keeps
    the earlier stage's settings and curve under ``init_from``.
    A run that is interrupted resumes from ``out_dir/resume.pt``.
    """
    claim_folder(out_dir, "pretrain", force, inputs=[data, init_from])
    if init_from is not None:
        load_source(init_from)  # a checkpoint that does not take EF fails before the data loads
    return train_source(out_dir, source_split(data, profile, data_dir, seed), profile, seed, init_from)


def train_source(
    out_dir: str | Path, split: SourceSplit, profile: str | Profile = "quick", seed: int = 0,
    init_from: str | Path | None = None, dropout: bool = False,
) -> tuple[NN17, dict]:
    """``pretrain`` on features already computed (what a machine without pymatgen can run).

    ``dropout`` trains with ElemNet's dropout (the card records it); models that start from the
    source never inherit it.
    """
    prof = get_profile(profile)
    X, y, tr, va, te = split.X, split.y, split.train, split.val, split.test
    model, config, earlier = NN17(X.shape[1], seed=seed), prof.pretrain, None
    if init_from is not None:
        start = load_source(init_from)  # refuses a checkpoint that does not take EF
        model, earlier = start.model, start.card
        if earlier.get("seed") != seed or earlier.get("task", {}).get("dataset") != split.data:
            raise TlrlError(f"{init_from} was trained on another dataset or split; --init-from needs the same")
        model.train()
        config = prof.pretrain_continue
    model.dropout = dropout
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = fit(model, X[tr], y[tr], X[va], y[va], config.with_(seed=seed), resume_path=out_dir / "resume.pt")
    test_mae = float(np.mean(np.abs(predict_array(model, X[te]) - y[te])))
    card = {
        "input": {"kind": "ef"},
        "task": {"dataset": split.data, "target": "formation enthalpy (eV/atom)"},
        "rows": split.rows,
        "profile": prof.name,
        "train_config": result.config,
        "seed": seed,
        "history": result.history.to_dict(orient="list"),
        "best_epoch": result.best_epoch,
        "val_mae": result.best_val_mae,
        "test_mae": test_mae,
        "seconds": result.seconds,
        "device": device_name(pick_device(config.device)),
    }
    if earlier is not None:
        card["init_from"] = {k: earlier.get(k) for k in
                             ("profile", "train_config", "history", "best_epoch", "val_mae", "test_mae", "seconds",
                              "device", "init_from")}
    checkpoint.save(model, out_dir, card)
    return model, card


def _chain(card: dict) -> list[dict]:
    """The stages of a source card, first to last: each ``init_from`` holds the stage before."""
    chain = []
    while card:
        chain.append(card)
        card = card.get("init_from")
    return chain[::-1]


def stages(card: dict) -> pd.DataFrame:
    """The training stages of a source card, first to last: each one's recipe, epochs, MAEs and minutes.

    A card made with ``init_from`` keeps the stage it restarted from under that key, and so on back.
    """
    rows = []
    for stage in _chain(card):
        config = stage.get("train_config") or {}
        rows.append({
            "epochs": len(stage["history"]["epoch"]), "best epoch": stage.get("best_epoch"),
            "batch size": config.get("batch_size"), "learning rate": config.get("lr"),
            "schedule": config.get("lr_schedule"), "precision": config.get("precision") or "fp32",
            "weight decay": config.get("weight_decay", 0.0), "device": stage.get("device", "not recorded"),
            "validation MAE": stage.get("val_mae"), "test MAE": stage.get("test_mae"),
            "minutes": round((stage.get("seconds") or float("nan")) / 60, 1),
        })
    return pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="stage"))


def history(card: dict) -> pd.DataFrame:
    """The learning curves of all stages of a source card, one after another: stage, epoch (counted
    over all stages), train_mae, val_mae."""
    parts, done = [], 0
    for k, stage in enumerate(_chain(card), 1):
        part = pd.DataFrame(stage["history"])
        parts.append(part.assign(stage=k, epoch=part["epoch"] + done))
        done += len(part)
    return pd.concat(parts, ignore_index=True)[["stage", "epoch", "train_mae", "val_mae"]]


def source_rows(card: dict, data_dir: str | Path | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows a source model was trained on, rebuilt from its card as ``source_split`` made them.

    Returns ``formula, target, split`` (``SPLIT_NAMES``) and the rows' EF; a card whose row counts
    the rebuilt split does not match is a ``TlrlError``.
    """
    data, seed, counts = card["task"]["dataset"], card["seed"], card["rows"]
    df = load_dataset(data, data_dir)
    if str(data) in OQMD_DATASETS:
        df, _ = filter_outliers(df)
    n_rows = counts["train"] + counts["val"] + counts["test"] + counts.get("bad_formulas_dropped", 0)
    if n_rows < len(df):  # the source was trained on a seeded sample
        df = df.sample(n=n_rows, random_state=seed).reset_index(drop=True)
    X, keep = element_fractions(df["formula"])
    rows = df.loc[keep, ["formula", "target"]].reset_index(drop=True)
    parts = split_train_val_test(len(rows), seed)
    if [len(p) for p in parts] != [counts["train"], counts["val"], counts["test"]]:
        raise TlrlError(f"{data} does not give the split of this source's card ({counts}); is it the same file?")
    split = np.empty(len(rows), dtype=object)
    for name, part in zip(SPLIT_NAMES, parts):
        split[part] = name
    return rows.assign(split=split), X


def _composition_keys(X: np.ndarray) -> list[bytes]:
    """One key per EF row: equal for equal element fractions, whatever the formula's order or scale."""
    return [row.tobytes() for row in np.round(X, 5).astype(np.float32)]


def known_compounds(model: NN17, rows: pd.DataFrame, X: np.ndarray, formulas: list[str]) -> pd.DataFrame:
    """The source's prediction for each formula beside the source data's value for the same composition.

    ``rows, X`` are what ``source_rows`` returns. Where a composition occurs more than once the
    lowest value (the ground state) is the reference; ``entries`` counts them and ``split`` is the
    part of the source's training the reference row was in (``not in the data`` when absent).
    """
    X_query, _ = element_fractions(formulas, errors="raise")
    order = rows["target"].to_numpy().argsort(kind="stable")
    lowest: dict[bytes, tuple[int, int]] = {}
    keys = _composition_keys(X)
    for i in order:  # lowest target first: the first row seen of a composition is its ground state
        first, n = lowest.get(keys[i], (i, 0))
        lowest[keys[i]] = (first, n + 1)
    found = [lowest.get(key, (-1, 0)) for key in _composition_keys(X_query)]
    reference = np.array([rows["target"].iat[i] if i >= 0 else np.nan for i, _ in found])
    predicted = predict_array(model, X_query)
    return pd.DataFrame({
        "predicted": predicted, "reference": reference, "error": predicted - reference,
        "entries": [n for _, n in found],
        "split": [rows["split"].iat[i] if i >= 0 else "not in the data" for i, _ in found],
    }, index=pd.Index(formulas, name="compound"))


def chemical_system(model: NN17, rows: pd.DataFrame, X: np.ndarray, elements: tuple[str, ...]) -> pd.DataFrame:
    """Every row of the source data made of exactly ``elements``, by ascending share of the first element,
    with the source's prediction, its error and the part of the training each row was in."""
    unknown = [el for el in elements if el not in ELEMENT_INDEX]
    if unknown:
        raise TlrlError(f"{unknown} are not among the source's 86 input elements")
    columns = [ELEMENT_INDEX[el] for el in elements]
    present = X > 0
    inside = present[:, columns].all(1) & (present.sum(1) == len(columns))
    found = rows.loc[inside, ["formula", "target", "split"]].assign(share=X[inside, columns[0]])
    predicted = predict_array(model, X[inside])
    found = found.assign(predicted=predicted, error=predicted - found["target"])
    return found.sort_values("share").drop(columns="share").set_index("formula")
