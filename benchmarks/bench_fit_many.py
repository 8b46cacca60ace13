"""Time 10-fold CV as one ``fit_many`` call against 10 sequential ``fit`` calls.

Run by hand, not by pytest::

    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_fit_many.py [--device cpu|cuda] \
        [--epochs N] [--rows N] [--precision fp32|bf16]

On real JARVIS formation-energy EF features (a seeded slice of the train part) it trains
one NN-17 per fold for a fixed number of epochs (patience above it, so nothing stops
early), at batch 32 and 256, both ways in the same run, and prints seconds, the ratio
sequential / fit_many and training samples per second. It also prints the throughput
of a single NN-17 trained for one epoch at batch 32 and 1024. The defaults take about
2-4 minutes on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch

from tlrl.data import cv_folds, load_dataset
from tlrl.featurize import element_fractions
from tlrl.model import NN17
from tlrl.train import TrainConfig, fit, fit_many, pick_device


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "mps"], default=None, help="default: the best available")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per fold (default 1)")
    parser.add_argument("--rows", type=int, default=2000, help="JARVIS train rows split into the folds (default 2000)")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--batch-sizes", default="32,256", help="comma-separated (default 32,256)")
    parser.add_argument("--throughput-rows", type=int, default=4096, help="rows for the single-model epoch")
    parser.add_argument("--throughput-batch-sizes", default="32,1024")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="training precision")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--data-dir", default=None, help="default: $TLRL_DATA_DIR")
    return parser.parse_args(argv)


def jarvis_ef(n_rows: int, data_dir: str | None, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """EF features and targets of a seeded slice of the JARVIS formation-energy train part."""
    df = load_dataset("jarvis_formation_energy", data_dir=data_dir)
    train = df[df["split"] == "train"]
    train = train.sample(n=min(n_rows, len(train)), random_state=seed)
    X, keep = element_fractions(train["formula"])
    return X, train["target"].to_numpy(np.float32)[keep]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_cv(X, y, folds, config: TrainConfig, device: torch.device) -> dict:
    """Seconds for the folds as 10 sequential fits and as one fit_many, with the same seeds."""
    seeds = [1000 + k for k in range(len(folds))]

    _sync(device)
    start = time.perf_counter()
    sequential = []
    for k, (tr, va) in enumerate(folds):
        model = NN17(X.shape[1], seed=k)
        sequential.append(fit(model, X[tr], y[tr], X[va], y[va], config.with_(seed=seeds[k])))
    _sync(device)
    t_seq = time.perf_counter() - start

    start = time.perf_counter()
    models = [NN17(X.shape[1], seed=k) for k in range(len(folds))]
    stacked = fit_many(models, X, y, [tr for tr, _ in folds], [va for _, va in folds], config, seeds=seeds)
    _sync(device)
    t_many = time.perf_counter() - start

    n_samples = sum(len(tr) for tr, _ in folds) * config.max_epochs
    gap = max(abs(a.best_val_mae - b.best_val_mae) for a, b in zip(sequential, stacked, strict=True))
    return {"seq_s": t_seq, "many_s": t_many, "samples": n_samples, "max_val_gap": gap}


def time_single_epoch(X, y, batch_size: int, device: torch.device) -> float:
    """Training samples per second of one NN-17 for one epoch (a 64-row val set)."""
    n_val = min(64, len(X) // 10)
    X_tr, y_tr, X_va, y_va = X[n_val:], y[n_val:], X[:n_val], y[:n_val]
    config = TrainConfig(batch_size=batch_size, max_epochs=1, progress=False, device=str(device))
    model = NN17(X.shape[1], seed=0)
    _sync(device)
    start = time.perf_counter()
    fit(model, X_tr, y_tr, X_va, y_va, config)
    _sync(device)
    return len(X_tr) / (time.perf_counter() - start)


def warm_up(X, y, device: torch.device) -> None:
    """One tiny fit: the first optimizer imports torch._dynamo (seconds), CUDA initialises."""
    config = TrainConfig(batch_size=32, max_epochs=1, progress=False, device=str(device))
    fit(NN17(X.shape[1], seed=0), X[:64], y[:64], X[64:96], y[64:96], config)
    fit_many(
        [NN17(X.shape[1], seed=k) for k in range(2)],
        X[:96],
        y[:96],
        [np.arange(64)] * 2,
        [np.arange(64, 96)] * 2,
        config,
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    tp_batch_sizes = [int(b) for b in args.throughput_batch_sizes.split(",")]

    X, y = jarvis_ef(max(args.rows, args.throughput_rows), args.data_dir)
    X_cv, y_cv = X[: args.rows], y[: args.rows]
    folds = cv_folds(len(X_cv), args.folds, seed=0)
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(
        f"device {device}{gpu}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"JARVIS EF: {len(X_cv)} rows in {args.folds} folds, {args.epochs} epoch(s) per fold, {args.precision}\n")
    warm_up(X, y, device)

    header = (
        f"{'batch':>6} {'seq s':>9} {'fit_many s':>11} {'ratio':>7} {'seq samples/s':>14} "
        f"{'many samples/s':>15} {'max |dval|':>11}"
    )
    print(header)
    print("-" * len(header))
    for batch_size in batch_sizes:
        config = TrainConfig(
            batch_size=batch_size, max_epochs=args.epochs, patience=args.epochs + 1, progress=False, device=str(device),
            precision=args.precision,
        )
        r = time_cv(X_cv, y_cv, folds, config, device)
        print(
            f"{batch_size:>6} {r['seq_s']:>9.2f} {r['many_s']:>11.2f} {r['seq_s'] / r['many_s']:>7.2f} "
            f"{r['samples'] / r['seq_s']:>14.0f} {r['samples'] / r['many_s']:>15.0f} {r['max_val_gap']:>11.1e}",
            flush=True,
        )

    X_tp, y_tp = X[: args.throughput_rows], y[: args.throughput_rows]
    print(f"\nsingle NN-17, one epoch on {len(X_tp)} rows:")
    for batch_size in tp_batch_sizes:
        print(
            f"  batch {batch_size:>5}: {time_single_epoch(X_tp, y_tp, batch_size, device):>9.0f} samples/s", flush=True
        )


if __name__ == "__main__":
    main()
