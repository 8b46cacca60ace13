"""Choose the quick training recipe by measurement: one model per recipe, side by side.

Run by hand, not by pytest::

    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_recipe.py [--source DIR] \
        [--epochs 20] [--recipes quick-old,cosine-256-fp32,...] [--seeds 0,1] [--folds 10] [--features ef] \
        [--out results/bench_recipe.csv]

On a machine without pymatgen (a lent GPU), ``--inputs`` reads the EF or PA (``--features``) that
``benchmarks/gpu_check.py prepare`` wrote, and ``--device`` picks the device.

results/bench_recipe.csv holds the precision and batch comparison, results/bench_recipe_lr.csv the
learning rates and epochs by how the network starts (``recipes``), results/bench_recipe_wd.csv the
weight decays (three seeds on a lent H200, then the chosen ones on the CPU), and
results/bench_recipe_scratch.csv the SC:DL(EF) and SC:DL(PA) candidates on quick's own split
(``--folds 5``, three to five seeds on a lent H200; then batch 128 at lr 1e-3, quick's SC:DL(EF) recipe
before batch 64, in bf16 against fp32 on the CPU).
Every recipe trains NN-17 (TL unless its init says otherwise) on the same rows: fold 0
of the seeded K-fold split of all 25,297 JARVIS formation-energy train rows (K = 10: 22,767 train /
2,530 val; K = 5: 20,237 / 5,060), and is tested on the 2,811 test rows. It prints the val and test MAE, the epochs
run and the best epoch, the seconds and the training samples per second of each, and the
speed and MAE of each recipe relative to the first. bf16 means bfloat16 autocast in the
training forward (``TrainConfig.precision``); validation and test always run in fp32.
The quick profile takes bf16 only if it is faster and no worse than 0.002 eV/atom in MAE.
"""

from __future__ import annotations

import argparse
import platform
from typing import Literal

import numpy as np
import pandas as pd
import torch
from gpu_check import jarvis_features, load_inputs

from tlrl.data import cv_folds
from tlrl.io import write_csv
from tlrl.model import NN17, activations, copy_weights
from tlrl.predict import predict_array
from tlrl.representation import load_source
from tlrl.train import TrainConfig, device_name, fit, pick_device

Init = Literal["source", "scratch", "scratch-dropout", "tlrl-relu-2"]
WEIGHT_DECAYS = (0.01, 0.1, 0.3, 1.0, 3.0)  # AdamW's, for TL (quick's rate) and for SC:DL (quick's rate and epochs)


def recipes(epochs: int) -> dict[str, tuple[TrainConfig, Init]]:
    """The candidates (config, how the network starts); batch 1024's and 128's lr is batch 256's scaled by sqrt.

    ``source``: TL, NN-17 initialised from the source. ``scratch``: SC:DL(EF), for ``epochs``, twice and
    four times as many, at batch 128 and at higher rates, to see what the scratch baseline needs.
    ``tlrl-relu-2``: TL+RL:DL(ReLU) on the source's layer-2 activations, every layer but the first
    from the source, to see whether the transfer rate suits it too. ``-wd``: quick's TL and SC:DL
    and TL+RL recipes with AdamW's weight decay. ``scratch-2x-*``: variations of SC:DL's recipe before
    session 7 (batch 256, lr 2e-3, twice the epochs, no decay) in batch, rate, decay, length, precision and
    ElemNet's dropout (``scratch-dropout``); with ``--features pa`` they are SC:DL(PA)'s candidates.
    """
    cosine = TrainConfig(lr_schedule="cosine", warmup_epochs=1, max_epochs=epochs, patience=epochs, progress=False)
    bf16 = cosine.with_(batch_size=256, lr=1e-3, precision="bf16")
    longer = bf16.with_(max_epochs=2 * epochs, patience=2 * epochs)
    return {
        "quick-old": (TrainConfig(batch_size=256, lr=5e-4, max_epochs=30, patience=5, progress=False), "source"),
        "cosine-256-fp32": (cosine.with_(batch_size=256, lr=1e-3), "source"),
        "cosine-256-bf16": (bf16, "source"),
        "cosine-1024-fp32": (cosine.with_(batch_size=1024, lr=2e-3), "source"),
        "cosine-1024-bf16": (cosine.with_(batch_size=1024, lr=2e-3, precision="bf16"), "source"),
        "cosine-128-bf16": (bf16.with_(batch_size=128, lr=7e-4), "source"),
        "cosine-128-bf16-lr5e-4": (bf16.with_(batch_size=128, lr=5e-4), "source"),
        **{f"cosine-256-bf16-lr{lr:.0e}".replace("e-0", "e-"): (bf16.with_(lr=lr), "source")
           for lr in (7e-4, 5e-4, 3e-4, 2e-4)},
        f"cosine-256-bf16-{2 * epochs}ep": (longer, "source"),
        f"scratch-{epochs}-bf16": (bf16, "scratch"),
        f"scratch-{2 * epochs}-bf16": (longer, "scratch"),
        f"scratch-{2 * epochs}-128-bf16": (longer.with_(batch_size=128, lr=7e-4), "scratch"),
        f"scratch-{2 * epochs}-bf16-lr2e-3": (longer.with_(lr=2e-3), "scratch"),
        f"scratch-{2 * epochs}-bf16-lr3e-3": (longer.with_(lr=3e-3), "scratch"),
        f"scratch-{4 * epochs}-bf16": (bf16.with_(max_epochs=4 * epochs, patience=4 * epochs), "scratch"),
        "tlrl-relu-2-lr1e-3": (bf16, "tlrl-relu-2"),
        "tlrl-relu-2-lr5e-4": (bf16.with_(lr=5e-4), "tlrl-relu-2"),
        **{f"cosine-256-bf16-lr5e-4-wd{wd:g}": (bf16.with_(lr=5e-4, weight_decay=wd), "source")
           for wd in WEIGHT_DECAYS},
        **{f"tlrl-relu-2-lr1e-3-wd{wd:g}": (bf16.with_(weight_decay=wd), "tlrl-relu-2") for wd in WEIGHT_DECAYS},
        **{f"scratch-{n * epochs}-bf16-lr2e-3-wd{wd:g}":
           (bf16.with_(lr=2e-3, max_epochs=n * epochs, patience=n * epochs, weight_decay=wd), "scratch")
           for wd in WEIGHT_DECAYS for n in (2, 4)},
        **scratch_variants(bf16.with_(lr=2e-3, max_epochs=2 * epochs, patience=2 * epochs)),
    }


def scratch_variants(base: TrainConfig) -> dict[str, tuple[TrainConfig, Init]]:
    """SC:DL candidates around ``base``; a batch's lr is batch 256's scaled by sqrt."""
    n = base.max_epochs
    wd1 = base.with_(weight_decay=1.0)
    variants = {
        "wd0": base, "wd1": wd1, "wd2": base.with_(weight_decay=2.0), "wd1-lr3e-3": wd1.with_(lr=3e-3),
        "wd0-lr1e-3": base.with_(lr=1e-3), "wd0-lr5e-4": base.with_(lr=5e-4), "wd0.1": base.with_(weight_decay=0.1),
        "wd1-b128": wd1.with_(batch_size=128, lr=1.4e-3), "wd1-b128-lr2e-3": wd1.with_(batch_size=128),
        "wd1-b64": wd1.with_(batch_size=64, lr=1e-3),
        "wd1-b64-lr7e-4": wd1.with_(batch_size=64, lr=7e-4),
        "wd1-b128-1.5x": wd1.with_(batch_size=128, lr=1.4e-3, max_epochs=n * 3 // 2, patience=n * 3 // 2),
        "wd1-b128-2x": wd1.with_(batch_size=128, lr=1.4e-3, max_epochs=2 * n, patience=2 * n),
        "wd1-b128-lr1e-3": wd1.with_(batch_size=128, lr=1e-3),
        "wd1-b128-lr1e-3-fp32": wd1.with_(batch_size=128, lr=1e-3, precision="fp32"),
        "wd0.5-b128": base.with_(batch_size=128, lr=1.4e-3, weight_decay=0.5),
        "wd2-b128": base.with_(batch_size=128, lr=1.4e-3, weight_decay=2.0),
        "wd1-b512": wd1.with_(batch_size=512, lr=2.8e-3),
        "wd1-b512-1.5x": wd1.with_(batch_size=512, lr=2.8e-3, max_epochs=n * 3 // 2, patience=n * 3 // 2),
        "wd1-2x": wd1.with_(max_epochs=2 * n, patience=2 * n),
        "wd1-b512-2x": wd1.with_(batch_size=512, lr=2.8e-3, max_epochs=2 * n, patience=2 * n),
        "wd0-half": base.with_(max_epochs=n // 2, patience=n // 2),
        "wd0-lr1e-3-half": base.with_(lr=1e-3, max_epochs=n // 2, patience=n // 2),
    }
    named = {f"scratch-2x-{name}": (config, "scratch") for name, config in variants.items()}
    for name in ("wd0", "wd1", "wd0-lr1e-3"):
        named[f"scratch-2x-{name}-dropout"] = (variants[name], "scratch-dropout")
    return named


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=None, help="source checkpoint (default: the shipped model)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs of the cosine recipes (default 20)")
    parser.add_argument("--recipes", default=None, help="comma-separated subset of the recipe names")
    parser.add_argument("--out", default=None, help="also write the table as CSV here")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds of each recipe's init and batches")
    parser.add_argument("--features", choices=["ef", "pa"], default="ef", help="the inputs (default ef)")
    parser.add_argument("--folds", type=int, default=10, help="fold 0 of this seeded K-fold split (default 10)")
    parser.add_argument("--inputs", default=None, help="folder of gpu_check.py prepare's npz files (no pymatgen)")
    parser.add_argument("--device", default=None, help="default: cuda, then mps, then cpu")
    parser.add_argument("--data-dir", default=None, help="default: $TLRL_DATA_DIR")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    args = parse_args(argv)
    source = load_source(args.source)
    chosen = recipes(args.epochs)
    if args.recipes:
        chosen = {name: chosen[name] for name in args.recipes.split(",")}
    if args.features == "pa" and any(init not in ("scratch", "scratch-dropout") for _, init in chosen.values()):
        raise SystemExit("--features pa: only the scratch recipes (the source reads EF)")
    kind = args.features
    data = load_inputs(args.inputs, kind) if args.inputs else jarvis_features(args.data_dir, kind=kind)
    X, y, X_test, y_test = (data[k] for k in ("X_train", "y_train", "X_test", "y_test"))
    tr, va = cv_folds(len(X), args.folds, seed=0)[0]
    print(f"fold 0: {len(tr)} train / {len(va)} val / {len(X_test)} test rows; {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; source {source.ref}")
    device = device_name(pick_device(args.device))
    rows = []
    for name, (config, init) in chosen.items():
        Xi, Xi_test = X, X_test
        if init == "tlrl-relu-2":
            Xi, Xi_test = (activations(source.model, features, 2, "relu") for features in (X, X_test))
        for seed in (int(s) for s in args.seeds.split(",")):
            model = NN17(Xi.shape[1], dropout=init == "scratch-dropout", seed=seed)
            if not init.startswith("scratch"):
                copy_weights(source.model, model, skip_first=init == "tlrl-relu-2")
            result = fit(model, Xi[tr], y[tr], Xi[va], y[va], config.with_(seed=seed, device=args.device))
            test_mae = float(np.mean(np.abs(predict_array(model, Xi_test) - y_test)))
            epochs = len(result.history)
            rows.append({"recipe": name, "features": args.features, "folds": args.folds, "init": init,
                         "source": "" if init.startswith("scratch") else source.ref,
                         "device": device, "seed": seed, "batch": config.batch_size,
                         "lr": config.lr, "weight_decay": config.weight_decay, "schedule": config.lr_schedule,
                         "precision": result.config["precision"], "epochs": epochs, "best_epoch": result.best_epoch,
                         "val_mae": result.best_val_mae, "test_mae": test_mae, "seconds": result.seconds,
                         "samples_per_s": len(tr) * epochs / result.seconds})
            print(f"{name} seed {seed}: val {result.best_val_mae:.4f} test {test_mae:.4f} in {result.seconds:.0f} s",
                  flush=True)
            table = pd.DataFrame(rows)
            if args.out:  # after every fit, so a run cut short keeps what it measured
                write_csv(args.out, table)
    first = table.iloc[0]
    table["speed_vs_first"] = table["samples_per_s"] / first["samples_per_s"]
    table["test_minus_first"] = table["test_mae"] - first["test_mae"]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        write_csv(args.out, table)
    return table


if __name__ == "__main__":
    main()
