"""Check tlrl's CUDA path and measure it: correctness, the fit_many speed-up, the cost of the full protocol.

Run by hand, in two steps, because the GPU machine may lack pymatgen (which the features need)::

    # here: EF and PA of all JARVIS formation-energy rows into a git-ignored folder, then the CPU reference
    TLRL_DATA_DIR=../shared/data .venv/bin/python benchmarks/gpu_check.py prepare --out artifacts/gpu_inputs
    .venv/bin/python benchmarks/gpu_check.py run --inputs artifacts/gpu_inputs --device cpu \
        --sections correctness --out results/gpu/cpu.json
    # on the GPU machine (torch, numpy, pandas, scikit-learn and safetensors are enough)
    python3 benchmarks/gpu_check.py run --inputs artifacts/gpu_inputs --reference results/gpu/cpu.json \
        --out results/gpu/cuda.json

``run`` writes one JSON file, rewritten atomically after each section, so a run cut short keeps
what it measured:

- ``correctness``: TL:Fine-Tune on fold 0 of the seeded 10-fold split with quick's TL recipe,
  in fp32 and in bf16 autocast, tested on the test rows. With ``--reference`` it checks that
  each validation MAE is within 0.005 of the reference run of the same recipe and seed.
- ``engine``: the engine as it runs on the device (on CUDA: with CUDA graphs) against the eager
  engine where the stack changes: models that stop early leave it, so the step is captured
  again, and a run interrupted after two epochs resumes from its file.
- ``speedup``: the 10 CV folds as one ``fit_many`` against 10 fits one after another, at
  batch 32 (the paper's, fp32) and at quick's batch and precision, for a few epochs each:
  training samples/s and the ratio. Then more models in one stack (a whole layer sweep is
  15 layers x 10 folds), and, on CUDA, the stacked batch-32 training step captured as a
  CUDA graph and under ``torch.compile`` against the same step run eagerly.
- ``projection``: hours of the full protocol (paper recipe: batch 32, patience 200) from the
  measured seconds per stacked epoch, for a range of epochs per fit, since early stopping
  decides those.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from tlrl.data import cv_folds
from tlrl.io import write_json
from tlrl.methods import METHODS, training_profile
from tlrl.model import NN17, copy_weights
from tlrl.predict import predict_array
from tlrl.profiles import PROFILES
from tlrl.representation import load_source
from tlrl.train import TrainConfig, _StackedTrainer, fit, fit_many, pick_device

SECTIONS = ("correctness", "engine", "speedup", "projection")
TOLERANCE = 0.005  # eV/atom of validation MAE between devices
# stacked fits of 10 folds in the full protocol: the fixed configurations, then the layer sweeps
FIXED_FITS = {"SC:DL(EF)": 1, "SC:DL(PA)": 1, "TL:Fine-Tune": 1, "RL:Freezing": 1}
SWEEP_FITS = {"RL:DL(ReLU)": 15, "RL:DL(Dense)": 15, "TL+RL:DL(ReLU)": 15, "TL+RL:DL(Dense)": 15}
OURS_FITS = {"TL:Freeze(k)+Fine-Tune": 15}  # not in the paper
FEATURES = ("ef", "pa")  # what ``prepare`` writes: jarvis_ef.npz, jarvis_pa.npz
EPOCHS_PER_FIT = (300, 600, 1000)  # best epoch + patience 200: the range the projection spans


def jarvis_features(data_dir: str | None, rows: int | None = None, kind: str = "ef") -> dict[str, np.ndarray]:
    """EF or PA matrices and targets of the JARVIS train and test parts (a seeded slice of each with
    ``rows``): X_train, y_train, X_test, y_test, as the benchmark builds them. Needs pymatgen (and
    matminer for PA)."""
    from tlrl.data import default_cache_dir, load_dataset
    from tlrl.methods import base_features

    df = load_dataset("jarvis_formation_energy", data_dir=data_dir)
    parts = [df[df["split"] == split] for split in ("train", "test")]
    if rows:
        parts = [part.sample(n=min(rows, len(part)), random_state=0) for part in parts]
    X_train, y_train, X_test, y_test, _ = base_features(*parts, kind, default_cache_dir())
    return {"X_train": X_train, "y_train": y_train, "X_test": X_test, "y_test": y_test}


def load_inputs(inputs: str | Path, kind: str = "ef") -> dict[str, np.ndarray]:
    """What ``prepare`` wrote into ``inputs`` for ``kind``: the arrays of ``jarvis_features``."""
    with np.load(Path(inputs) / f"jarvis_{kind}.npz") as npz:
        return {k: npz[k] for k in npz.files}


def prepare(out: Path, data_dir: str | None, rows: int | None) -> None:
    """Write ``jarvis_features`` of each of ``FEATURES`` into ``out``, for a machine without pymatgen."""
    out.mkdir(parents=True, exist_ok=True)
    for kind in FEATURES:
        parts = jarvis_features(data_dir, rows, kind)
        np.savez_compressed(out / f"jarvis_{kind}.npz", **parts)
        print(f"{out / f'jarvis_{kind}.npz'}: {len(parts['X_train'])} train, {len(parts['X_test'])} test rows")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(device: torch.device, fn: Callable, *args) -> tuple[object, float]:
    """``fn(*args)`` and its seconds, the device's queue drained before and after."""
    _sync(device)
    start = time.perf_counter()
    value = fn(*args)
    _sync(device)
    return value, time.perf_counter() - start


def warm_up(X: np.ndarray, y: np.ndarray, device: torch.device) -> None:
    """One tiny fit, so that no timing below pays for starting CUDA, cuBLAS or the optimizer."""
    config = TrainConfig(batch_size=32, max_epochs=1, progress=False, device=str(device))
    fit(NN17(X.shape[1], seed=0), X[:64], y[:64], X[64:96], y[64:96], config)


def correctness(data, folds, device, epochs: int | None, reference: dict | None) -> dict:
    """TL:Fine-Tune on fold 0 with quick's TL recipe, in fp32 and bf16."""
    recipe = training_profile(METHODS["tl-finetune"], PROFILES["quick"]).train
    if epochs:
        recipe = recipe.with_(max_epochs=epochs, patience=epochs)
    source = load_source()
    tr, va = folds[0]
    X, y = data["X_train"], data["y_train"]
    out = {"recipe": {k: v for k, v in vars(recipe).items() if k not in ("progress", "device")},
           "rows": {"train": len(tr), "val": len(va), "test": len(data["X_test"])}}
    for precision in ("fp32", "bf16"):
        model = NN17(X.shape[1], seed=0)
        copy_weights(source.model, model)
        config = recipe.with_(precision=precision, device=str(device), progress=False)
        result, seconds = _timed(device, fit, model, X[tr], y[tr], X[va], y[va], config)
        test = float(np.mean(np.abs(predict_array(model, data["X_test"]) - data["y_test"])))
        row = {"val_mae": result.best_val_mae, "test_mae": test, "best_epoch": result.best_epoch,
               "epochs": len(result.history), "seconds": seconds,
               "samples_per_s": len(tr) * len(result.history) / seconds}
        if reference:
            ref = reference["correctness"][precision]
            row |= {"reference_val_mae": ref["val_mae"], "reference_test_mae": ref["test_mae"],
                    "val_gap": abs(row["val_mae"] - ref["val_mae"]),
                    "within_tolerance": abs(row["val_mae"] - ref["val_mae"]) <= TOLERANCE}
        out[precision] = row
        print(f"correctness {precision}: val {row['val_mae']:.4f} test {test:.4f} in {seconds:.1f} s"
              + (f" (reference val {row['reference_val_mae']:.4f}, gap {row['val_gap']:.4f})" if reference else ""),
              flush=True)
    return out


def engine(data, folds, device, resume_dir: Path) -> dict:
    """Early stopping and resume of four stacked folds (3,000 train / 500 val rows each, batch 32), as the
    device runs them by default and eagerly; the largest differences of their histories."""
    X, y = data["X_train"], data["y_train"]
    picks = folds[:4]
    config = TrainConfig(batch_size=32, lr=3e-3, max_epochs=8, patience=1, progress=False, device=str(device),
                         checkpoint_every_s=0.0)

    def run(graphs: bool, resume_path: Path | None = None):
        models = [NN17(X.shape[1], seed=k) for k in range(len(picks))]
        return fit_many(models, X, y, [tr[:3000] for tr, _ in picks], [va[:500] for _, va in picks],
                        config.with_(cuda_graph=graphs), resume_path=resume_path)

    def gap(a, b) -> float:
        columns = ["train_mae", "val_mae"]
        return max(float(np.abs(r.history[columns].to_numpy() - q.history[columns].to_numpy()).max())
                   for r, q in zip(a, b, strict=True))

    eager, default = run(False), run(True)
    stopped = [len(r.history) for r in default]
    out = {"epochs_run": stopped, "same_epochs_as_eager": stopped == [len(r.history) for r in eager]}
    out["max_history_gap"] = gap(eager, default) if out["same_epochs_as_eager"] else None

    resume = resume_dir / "engine_resume.pt"
    train_epoch, calls = _StackedTrainer._train_epoch, []

    def interrupted(self, *args):
        calls.append(1)
        if len(calls) == 3:  # the resume file holds the state after epoch 2
            raise KeyboardInterrupt
        return train_epoch(self, *args)

    _StackedTrainer._train_epoch = interrupted
    try:
        run(True, resume)
    except KeyboardInterrupt:
        pass
    finally:
        _StackedTrainer._train_epoch = train_epoch
    resumed = run(True, resume)
    same = [len(r.history) for r in resumed] == stopped
    out |= {"resume_file_written": len(calls) == 3, "resumed_same_epochs": same,
            "resumed_max_history_gap": gap(default, resumed) if same else None}
    print(f"engine: epochs {stopped}, history gap to eager {out['max_history_gap']}, "
          f"after a resume {out['resumed_max_history_gap']}", flush=True)
    return out


def _cv_time(X, y, folds, config: TrainConfig, device) -> dict:
    """The folds trained one after another (eager) and as one fit_many (eager, and on CUDA also replayed
    as CUDA graphs), with the same seeds."""
    seeds = [1000 + k for k in range(len(folds))]

    def sequential():
        return [fit(NN17(X.shape[1], seed=k), X[tr], y[tr], X[va], y[va], config.with_(seed=seeds[k]))
                for k, (tr, va) in enumerate(folds)]

    def stacked(graphs: bool):
        models = [NN17(X.shape[1], seed=k) for k in range(len(folds))]
        return fit_many(models, X, y, [tr for tr, _ in folds], [va for _, va in folds],
                        config.with_(cuda_graph=graphs), seeds=seeds)

    def gap(a, b) -> float:
        return max(abs(r.best_val_mae - q.best_val_mae) for r, q in zip(a, b, strict=True))

    config = config.with_(cuda_graph=False)
    seq, seq_s = _timed(device, sequential)
    many, many_s = _timed(device, stacked, False)
    samples = sum(len(tr) for tr, _ in folds) * config.max_epochs
    row = {"batch": config.batch_size, "precision": config.precision, "epochs": config.max_epochs,
           "sequential_s": seq_s, "fit_many_s": many_s, "ratio": seq_s / many_s,
           "sequential_samples_per_s": samples / seq_s, "fit_many_samples_per_s": samples / many_s,
           "fit_many_s_per_epoch": many_s / config.max_epochs, "max_val_gap": gap(seq, many)}
    if device.type == "cuda":  # the engine's default there: each full step replayed as a CUDA graph
        graphed, graphed_s = _timed(device, stacked, True)
        row |= {"fit_many_graph_s": graphed_s, "graph_ratio": seq_s / graphed_s,
                "fit_many_graph_s_per_epoch": graphed_s / config.max_epochs,
                "graph_vs_eager_max_val_gap": gap(many, graphed)}
    return row


def _stack_rate(X, y, folds, n_models: int, batch: int, epochs: int, device) -> dict:
    """Samples/s of ``n_models`` stacked NN-17s (the folds repeated), at ``batch``, fp32."""
    config = TrainConfig(batch_size=batch, max_epochs=epochs, patience=epochs + 1, progress=False, device=str(device))
    picks = [folds[k % len(folds)] for k in range(n_models)]
    models = [NN17(X.shape[1], seed=k) for k in range(n_models)]
    _, seconds = _timed(device, fit_many, models, X, y, [tr for tr, _ in picks], [va for _, va in picks], config)
    samples = sum(len(tr) for tr, _ in picks) * epochs
    return {"models": n_models, "batch": batch, "s_per_epoch": seconds / epochs, "samples_per_s": samples / seconds}


def _step_rates(X, y, folds, batch: int, steps: int, device) -> dict:
    """The engine's stacked training step of the folds (fp32) eager, replayed as a CUDA graph, and with its
    forward under ``torch.compile``.

    Each variant warms up on the first four batches (the graph is captured at the fourth), restarts from
    the same weights and takes the same ``steps`` batches; ``max_weight_gap`` is the largest difference
    of its weights from the eager run's at the end.
    """
    n = min(len(tr) for tr, _ in folds)
    gen = torch.Generator().manual_seed(0)
    order = torch.stack([torch.as_tensor(tr[:n])[torch.randperm(n, generator=gen)] for tr, _ in folds]).to(device)
    batches = [order[:, s : s + batch] for s in range(0, n - batch + 1, batch)][: steps + 4]
    warm, timed = batches[:4], batches[4:]

    def trainer(graphs: bool) -> _StackedTrainer:
        models = [NN17(X.shape[1], seed=k) for k in range(len(folds))]
        config = TrainConfig(batch_size=batch, device=str(device), progress=False, cuda_graph=graphs)
        return _StackedTrainer(models, X, y, [tr for tr, _ in folds], [va for _, va in folds], config, None, None)

    def build(name: str):
        t = trainer(graphs=name == "cuda_graph")
        if name == "torch_compile":
            t._forward = torch.compile(t._forward)
        params = t._stack()
        optimizer = t._new_optimizer(params)
        step = t._graph_step if name == "cuda_graph" else t._step
        return params, lambda idx: step(params, optimizer, None, idx, None)

    names = ["eager"] + (["cuda_graph", "torch_compile"] if device.type == "cuda" else [])
    out, eager_params = {}, None
    for name in names:
        try:
            (params, step), setup_s = _timed(device, build, name)
            _, warm_s = _timed(device, lambda take: [take(idx) for idx in warm], step)  # captures, compiles
            with torch.no_grad():  # the same start for every variant
                for p, q in zip(params, trainer(False)._stack(), strict=True):
                    p.copy_(q)
            _, seconds = _timed(device, lambda take: [take(idx) for idx in timed], step)
        except Exception as exc:  # a variant this torch or device cannot run is reported, not fatal
            out[name] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            print(f"step {name}: failed ({out[name]['error']})", flush=True)
            continue
        final = [p.detach().clone() for p in params]
        eager_params = eager_params or final
        gap = max(float((a - b).abs().max()) for a, b in zip(final, eager_params, strict=True))
        out[name] = {"steps_per_s": len(timed) / seconds, "samples_per_s": len(timed) * batch * len(folds) / seconds,
                     "setup_s": setup_s + warm_s, "max_weight_gap": gap}
        print(f"step {name}: {out[name]['steps_per_s']:.0f} steps/s, weights within {gap:.1e} of eager", flush=True)
    for name in out:
        if "steps_per_s" in out[name] and "steps_per_s" in out.get("eager", {}):
            out[name]["speedup_vs_eager"] = out[name]["steps_per_s"] / out["eager"]["steps_per_s"]
    return {"batch": batch, "models": len(folds), "steps": len(timed), **out}


def speedup(data, folds, device, epochs: int, stack_sizes: list[int], steps: int, save: Callable[[dict], None]) -> dict:
    """fit_many against one fit per fold, bigger stacks, and the graphed or compiled step; ``save`` after each."""
    quick = PROFILES["quick"].train
    X, y = data["X_train"], data["y_train"]
    out: dict = {"cv": [], "stacks": []}
    for batch, precision in ((32, "fp32"), (quick.batch_size, quick.precision)):
        config = TrainConfig(batch_size=batch, max_epochs=epochs, patience=epochs + 1, precision=precision,
                             progress=False, device=str(device))
        r = _cv_time(X, y, folds, config, device)
        out["cv"].append(r)
        save(out)
        graphed = f", {r['fit_many_graph_s']:.1f} s graphed, x{r['graph_ratio']:.2f}" if "graph_ratio" in r else ""
        print(f"speedup batch {batch} {precision}: {r['sequential_s']:.1f} s one by one, {r['fit_many_s']:.1f} s "
              f"stacked, x{r['ratio']:.2f}{graphed}", flush=True)
    for n_models in stack_sizes:
        out["stacks"].append(_stack_rate(X, y, folds, n_models, 32, 1, device))
        save(out)
        print(f"stack of {n_models} at batch 32: {out['stacks'][-1]['samples_per_s']:.0f} samples/s", flush=True)
    out["step"] = _step_rates(X, y, folds, 32, steps, device)
    save(out)
    return out


def projection(speed: dict, source_train_rows: int) -> dict:
    """Hours of the full protocol at the paper's recipe, from the measured batch-32 rates."""
    b32 = next(r for r in speed["cv"] if r["batch"] == 32 and r["precision"] == "fp32")
    # fit_many as it runs there by default (with CUDA graphs on CUDA)
    stacked_epoch_s = b32.get("fit_many_graph_s_per_epoch", b32["fit_many_s_per_epoch"])
    # one model at batch 32, as the source trains: the eager sequential rate per sample, on OQMD's train rows
    source_epoch_s = source_train_rows / b32["sequential_samples_per_s"]
    paper_fits = sum(FIXED_FITS.values()) + sum(SWEEP_FITS.values())
    rows = []
    for epochs in EPOCHS_PER_FIT:
        paper_h = paper_fits * epochs * stacked_epoch_s / 3600
        rows.append({"epochs_per_fit": epochs, "source_h": epochs * source_epoch_s / 3600,
                     "paper_configurations_h": paper_h,
                     "with_tl_freeze_sweep_h": paper_h + sum(OURS_FITS.values()) * epochs * stacked_epoch_s / 3600})
    widest = max(speed["stacks"], key=lambda s: s["models"], default=None)
    sweep_note = None
    if widest and widest["models"] >= 150:
        # a whole sweep (15 layers x 10 folds) in one stack; EF-wide first layer, so a lower bound
        sweep_note = {"models": widest["models"], "s_per_epoch": widest["s_per_epoch"],
                      "sweeps_h_at_600_epochs": len(SWEEP_FITS) * 600 * widest["s_per_epoch"] / 3600}
    return {"stacked_10_fold_epoch_s_batch32": stacked_epoch_s, "source_epoch_s_batch32": source_epoch_s,
            "source_train_rows": source_train_rows, "fits_of_10_folds": {**FIXED_FITS, **SWEEP_FITS, **OURS_FITS},
            "hours": rows, "whole_sweep_in_one_stack": sweep_note,
            "assumes": "every fit runs epochs_per_fit epochs (early stopping at patience 200 decides it); "
                       "SC:ML (AutoML, CPU) and feature computation are not counted; every layer of a sweep "
                       "is cross-validated (layer_search 'cv'), as the paper did"}


def run(args: argparse.Namespace) -> dict:
    device = pick_device(args.device)
    data = load_inputs(args.inputs)
    folds = cv_folds(len(data["X_train"]), 10, seed=0)
    sections = args.sections.split(",")
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"unknown section(s) {sorted(unknown)}: choose from {', '.join(SECTIONS)}")
    reference = None
    if args.reference:
        reference = json.loads(Path(args.reference).read_text())
    report = {"device": str(device), "torch": torch.__version__, "cuda": torch.version.cuda,
              "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
              or platform.machine(), "cpu_threads": torch.get_num_threads(),
              "rows": {"train": len(data["X_train"]), "test": len(data["X_test"])}}
    print(f"{report['device']} ({report['device_name']}), torch {report['torch']}, CUDA {report['cuda']}", flush=True)
    started = time.perf_counter()
    warm_up(data["X_train"], data["y_train"], device)
    if "correctness" in sections:
        report["correctness"] = correctness(data, folds, device, args.epochs, reference)
        write_json(args.out, report)
    if "engine" in sections:
        report["engine"] = engine(data, folds, device, Path(args.out).parent)
        write_json(args.out, report)
    if "speedup" in sections:
        stack_sizes = [int(s) for s in args.stack_sizes.split(",") if s]
        report["speedup"] = speedup(data, folds, device, args.speed_epochs, stack_sizes, args.steps,
                                    lambda part: write_json(args.out, report | {"speedup": part}))
    if "projection" in sections and "speedup" in report:
        report["projection"] = projection(report["speedup"], load_source().card["rows"]["train"])
        for row in report["projection"]["hours"]:
            print(f"projection at {row['epochs_per_fit']} epochs per fit: source {row['source_h']:.1f} h, "
                  f"the paper's configurations {row['paper_configurations_h']:.1f} h", flush=True)
    report["seconds"] = time.perf_counter() - started
    write_json(args.out, report)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="write the EF and PA inputs (needs pymatgen, matminer, the data)")
    prep.add_argument("--out", required=True, type=Path)
    prep.add_argument("--rows", type=int, default=None, help="a seeded slice of each part (default: all rows)")
    prep.add_argument("--data-dir", default=None, help="default: $TLRL_DATA_DIR")
    go = sub.add_parser("run", help="check and measure on a device")
    go.add_argument("--inputs", required=True, help="the folder `prepare` wrote")
    go.add_argument("--out", required=True, type=Path, help="the JSON report")
    go.add_argument("--device", default=None, help="default: the best available")
    go.add_argument("--sections", default=",".join(SECTIONS))
    go.add_argument("--reference", default=None, help="a report of an earlier run to compare correctness with")
    go.add_argument("--epochs", type=int, default=None, help="correctness epochs (default: the recipe's)")
    go.add_argument("--speed-epochs", type=int, default=2, help="epochs of each speed-up fit (default 2)")
    go.add_argument("--stack-sizes", default="10,50,150", help="models per stack for the stacking rates")
    go.add_argument("--steps", type=int, default=200, help="training steps of each step variant")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.command == "prepare":
        prepare(args.out, args.data_dir, args.rows)
    else:
        run(args)


if __name__ == "__main__":
    main()
