"""The training engine: fit one NN-17, or many at once with stacked weights.

``fit_many`` trains E independent networks in one pass: each layer's weights are
stacked into an (E, in, out) tensor and applied with ``torch.baddbmm``. Every model
keeps its own data order, early stopping and best-weights snapshot, and Adam is
element-wise, so this is E separate trainings computed together. ``fit`` is the
E = 1 case, so there is one engine.

Models may have train sets of different sizes (K folds of N rows differ by one). The
shorter orders are padded to the longest and the padded rows are masked out of the
loss, so each model sees exactly its own batches. The one exception: when a model
would have fewer steps per epoch than the longest (e.g. 320 vs 321 rows at batch 32),
its extra step reuses rows from the start of its epoch order.

With ``dropout=True`` the masks are drawn for the whole stack, so a model's dropout
noise depends on its companions: the trainings are then statistically, not bitwise,
equivalent to separate ones.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from tlrl.errors import TlrlError
from tlrl.io import atomic_write
from tlrl.model import ELEMNET_DROPOUT, NN17


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and stopping settings; the defaults are the paper's."""

    lr: float = 1e-4
    eps: float = 1e-7
    batch_size: int = 32
    max_epochs: int = 4000
    patience: int = 200
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: int = 0
    seed: int = 0
    device: str | None = None
    eval_batch_size: int = 8192
    # "bf16": the training forward runs under bfloat16 autocast (weights, Adam, output layer
    # and validation stay fp32). Chosen per profile by measurement (benchmarks/bench_recipe.py).
    precision: Literal["fp32", "bf16"] = "fp32"
    # decoupled weight decay (AdamW) when above 0; the paper's Adam has none
    weight_decay: float = 0.0
    # on CUDA, replay each full training step as a CUDA graph (benchmarks/gpu_check.py measures it);
    # it changes speed, not the maths. Ignored elsewhere and with dropout.
    cuda_graph: bool = True
    progress: bool = True
    checkpoint_every_s: float = 120.0

    def with_(self, **changes) -> TrainConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @property
    def stopping(self) -> str:
        """How a fit ends, for readers: its patience, or none when patience covers every epoch."""
        return f"patience {self.patience}" if self.patience < self.max_epochs else "no early stop, best epoch kept"


@dataclass
class FitResult:
    """What one training left behind (the model itself holds the best weights)."""

    history: pd.DataFrame  # epoch, train_mae, val_mae
    best_epoch: int
    best_val_mae: float
    seconds: float
    config: dict = field(default_factory=dict)


def pick_device(device: str | None = None) -> torch.device:
    """The given device, else cuda, then mps, then cpu."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str | None) -> None:
    """Refuse, before any work, a device this torch cannot train on (None: ``pick_device`` chooses)."""
    if not device:
        return
    if not re.fullmatch(r"cpu|mps|cuda(:[0-9]+)?", str(device)):
        raise TlrlError(f"device must be cpu, cuda, cuda:N or mps, got {device!r}")
    kind, _, index = str(device).partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if int(index or 0) >= count:
            found = f"only {count} CUDA device(s)" if count else "no CUDA device"
            raise TlrlError(f"device {device} is not available: torch {torch.__version__} sees {found}; "
                            "use --device cpu or leave --device out")
    elif kind == "mps" and not torch.backends.mps.is_available():
        raise TlrlError(f"device mps is not available to torch {torch.__version__}; use --device cpu or leave "
                        "--device out")


def device_name(device: torch.device) -> str:
    """``cpu``, or the device type with the GPU's name (``cuda: NVIDIA H200``)."""
    return f"cuda: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else device.type


def supports_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively: on CPUs, and on CUDA GPUs from Ampere (compute capability 8.0).

    Older GPUs, such as Colab's T4 (7.5), refuse it or emulate it slowly.
    """
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 0)
    return device.type == "cpu"


def fit(
    model: NN17,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    config: TrainConfig = TrainConfig(),
    resume_path: str | Path | None = None,
) -> FitResult:
    """Train one model with early stopping on validation MAE; best weights are restored."""
    X = np.concatenate([X_train, X_val])
    y = np.concatenate([y_train, y_val])
    n = len(X_train)
    return fit_many(
        [model], X, y, [np.arange(n)], [np.arange(n, len(X))], config, resume_path=resume_path
    )[0]


def fit_many(
    models: list[NN17],
    X: np.ndarray | list[np.ndarray],
    y: np.ndarray,
    train_idx: list[np.ndarray],
    val_idx: list[np.ndarray],
    config: TrainConfig = TrainConfig(),
    seeds: list[int] | None = None,
    resume_path: str | Path | None = None,
) -> list[FitResult]:
    """Train E models together; model e sees rows ``train_idx[e]`` of X (or of ``X[e]``).

    ``X`` is one (N, d) matrix shared by all models (e.g. CV folds), or a list of E
    matrices with the same rows and possibly different widths (e.g. a layer sweep),
    zero-padded to a common width. Returns one ``FitResult`` per model and writes the
    best weights back into each model.
    """
    return _StackedTrainer(models, X, y, train_idx, val_idx, config, seeds, resume_path).run()


class _StackedTrainer:
    def __init__(self, models, X, y, train_idx, val_idx, config, seeds, resume_path) -> None:
        self.models = models
        self.E = len(models)
        if not (len(train_idx) == len(val_idx) == self.E):
            raise ValueError("need one train and one val index array per model")
        self.device = pick_device(config.device)
        if config.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {config.precision!r}")
        if config.precision == "bf16" and not supports_bf16(self.device):
            warnings.warn(f"{self.device} has no native bfloat16: training in fp32 instead", stacklevel=3)
            config = config.with_(precision="fp32")  # so the results record what ran
        self.cfg = config
        self.widths = [m.n_inputs for m in models]
        self.shared_X = not isinstance(X, list)
        self.X = self._inputs(X)
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.float32, device=self.device)
        self.train_idx = [torch.as_tensor(np.asarray(i), dtype=torch.long) for i in train_idx]
        self.val_idx = [torch.as_tensor(np.asarray(i), dtype=torch.long) for i in val_idx]
        if any(len(i) == 0 for i in self.train_idx) or any(len(i) == 0 for i in self.val_idx):
            raise ValueError("every model needs at least one train and one val row")
        seeds = seeds if seeds is not None else [config.seed + e for e in range(self.E)]
        self.generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        self.dropout = models[0].dropout
        if any(m.dropout != self.dropout for m in models):
            raise ValueError("all models must use dropout, or none")
        self.graphs = config.cuda_graph and self.device.type == "cuda" and not self.dropout
        self._graph: dict | None = None  # the captured step of the current stack (see _graph_step)
        self.trainable = [layer.weight.requires_grad for layer in models[0].layers]
        if any([layer.weight.requires_grad for layer in m.layers] != self.trainable for m in models):
            raise ValueError("all models must freeze the same layers")
        self.resume_path = Path(resume_path) if resume_path else None
        self.fingerprint = self._fingerprint(X, y, seeds) if self.resume_path else None
        self.n_max = max(len(i) for i in self.train_idx)
        self.steps_per_epoch = math.ceil(self.n_max / config.batch_size)

    def _inputs(self, X) -> torch.Tensor:
        if self.shared_X:
            if len({*self.widths}) != 1 or self.widths[0] != X.shape[1]:
                raise ValueError(f"inputs have {X.shape[1]} columns, models expect {self.widths}")
            return torch.as_tensor(np.asarray(X), dtype=torch.float32, device=self.device)
        if len(X) != self.E:
            raise ValueError(f"got {len(X)} input matrices for {self.E} models")
        for w, x in zip(self.widths, X, strict=True):
            if len(x) != len(X[0]):
                raise ValueError("the input matrices must have the same rows")
            if x.shape[1] != w:
                raise ValueError(f"an input has {x.shape[1]} columns, its model expects {w}")
        padded = np.zeros((self.E, len(X[0]), max(self.widths)), dtype=np.float32)
        for e, x in enumerate(X):
            padded[e, :, : x.shape[1]] = x
        return torch.as_tensor(padded, device=self.device)

    # --- stacked parameters -------------------------------------------------------
    def _stack(self) -> list[torch.Tensor]:
        d_max = max(self.widths)
        params = []
        for li, trainable in enumerate(self.trainable):
            weights = []
            for m in self.models:
                w = m.layers[li].weight.detach().T
                if li == 0 and w.shape[0] < d_max:
                    w = torch.cat([w, w.new_zeros(d_max - w.shape[0], w.shape[1])])
                weights.append(w)
            W = torch.stack(weights).to(self.device)
            b = torch.stack([m.layers[li].bias.detach()[None] for m in self.models]).to(self.device)
            params += [W.clone().requires_grad_(trainable), b.clone().requires_grad_(trainable)]
        return params

    def _forward(self, params: list[torch.Tensor], h: torch.Tensor, training: bool) -> torch.Tensor:
        """The stacked network; the hidden layers run in bf16 when training asks for it."""
        n_hidden = len(params) // 2 - 1
        bf16 = training and self.cfg.precision == "bf16"
        # no cast cache: CUDA graph capture needs it off, and each weight is cast once per forward anyway
        with torch.autocast(self.device.type, torch.bfloat16, enabled=bf16, cache_enabled=False):
            for li in range(n_hidden):
                h = torch.relu(torch.baddbmm(params[2 * li + 1], h, params[2 * li]))
                if self.dropout and (li + 1) in ELEMNET_DROPOUT:
                    h = torch.nn.functional.dropout(h, ELEMNET_DROPOUT[li + 1], training)
        return torch.baddbmm(params[-1], h.float(), params[-2]).squeeze(-1)

    def _rows(self, active: list[int]) -> torch.Tensor | None:
        """The active models' input matrices, as an index column (None when they share one)."""
        return None if self.shared_X else torch.as_tensor(active, device=self.device)[:, None]

    def _batch(self, rows: torch.Tensor | None, idx: torch.Tensor) -> torch.Tensor:
        return self.X[idx] if rows is None else self.X[rows, idx]

    # --- one epoch ------------------------------------------------------------------
    def _epoch_order(self, active: list[int]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each active model's shuffled rows, padded to a common length, and the loss mask.

        The mask is None when no model needs padding. Padding past a model's own rows is
        masked out inside its last batch; whole batches beyond its last one (it would
        have fewer steps) are filled by wrapping around and count as data.
        """
        n_max = max(len(self.train_idx[e]) for e in active)
        B = self.cfg.batch_size
        orders, masks = [], []
        for e in active:
            idx = self.train_idx[e]
            n = len(idx)
            perm = idx[torch.randperm(n, generator=self.generators[e])]
            mask = torch.ones(n_max)
            if n < n_max:
                perm = perm.repeat(-(-n_max // n))[:n_max]
                mask[n : min(n_max, -(-n // B) * B)] = 0.0
            orders.append(perm)
            masks.append(mask)
        order = torch.stack(orders).to(self.device)
        if all(len(self.train_idx[e]) == n_max for e in active):
            return order, None
        return order, torch.stack(masks).to(self.device)

    def _lr(self, step: int) -> float:
        cfg = self.cfg
        warm = cfg.warmup_epochs * self.steps_per_epoch
        if step < warm:
            return cfg.lr * (step + 1) / warm
        if cfg.lr_schedule == "cosine":
            total = max(1, cfg.max_epochs * self.steps_per_epoch - warm)
            return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / total)))
        return cfg.lr

    def _train_epoch(self, params, optimizer, active, step) -> tuple[np.ndarray, int]:
        order, mask = self._epoch_order(active)
        B, rows = self.cfg.batch_size, self._rows(active)
        abs_sum = torch.zeros(len(active), device=self.device)
        for s in range(0, order.shape[1], B):
            idx = order[:, s : s + B]
            m = mask[:, s : s + B] if mask is not None else None
            self._set_lr(optimizer, self._lr(step))
            graphed = self.graphs and idx.shape[1] == B
            abs_sum += (self._graph_step if graphed else self._step)(params, optimizer, rows, idx, m)
            step += 1
        count = mask.sum(dim=1) if mask is not None else order.shape[1]
        return (abs_sum / count).cpu().numpy(), step

    @staticmethod
    def _set_lr(optimizer: torch.optim.Adam, lr: float) -> None:
        for group in optimizer.param_groups:
            if torch.is_tensor(group["lr"]):  # a captured step reads the rate from this tensor
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr

    def _step(self, params, optimizer, rows, idx, m) -> torch.Tensor:
        """One eager training step; returns each model's summed absolute error over the batch."""
        pred = self._forward(params, self._batch(rows, idx), training=True)
        err = (pred - self.y[idx]).abs()
        if m is not None:
            err = err * m
            loss = (err.sum(dim=1) / m.sum(dim=1)).sum()
        else:
            loss = err.mean(dim=1).sum()
        optimizer.zero_grad(set_to_none=True)  # also detaches a captured step's gradients
        loss.backward()
        optimizer.step()
        return err.detach().sum(dim=1)

    def _graph_step(self, params, optimizer, rows, idx, m) -> torch.Tensor:
        """The step replayed as a CUDA graph. Each new stack (``params``) first takes three eager
        steps on a side stream, as capture requires; the fourth is captured. Partial batches stay eager."""
        g = self._graph
        if g is None or g["params"] is not params:
            g = self._graph = {"params": params, "eager_steps": 0, "graph": None}
        if g["eager_steps"] < 3:
            g["eager_steps"] += 1
            current = torch.cuda.current_stream(self.device)
            side = torch.cuda.Stream(self.device)
            side.wait_stream(current)
            with torch.cuda.stream(side):
                err = self._step(params, optimizer, rows, idx, m)
            current.wait_stream(side)
            return err
        if g["graph"] is None:
            self._capture(g, params, optimizer, rows, idx)
        g["idx"].copy_(idx)
        if m is None:
            g["mask"].fill_(1.0)
        else:
            g["mask"].copy_(m)
        g["graph"].replay()
        return g["err"]

    def _capture(self, g: dict, params, optimizer, rows, idx) -> None:
        """Record one step into ``g``: static index, mask and input-row buffers, and a tensor learning rate."""
        for group in optimizer.param_groups:
            group["lr"] = torch.tensor(float(group["lr"]), device=self.device)
        g["idx"], g["mask"] = idx.clone(), torch.ones(idx.shape, device=self.device)
        g["rows"] = None if rows is None else rows.clone()
        optimizer.zero_grad(set_to_none=True)  # the graph allocates its own gradients
        g["graph"] = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g["graph"]):
            g["err"] = self._step(params, optimizer, g["rows"], g["idx"], g["mask"])

    @torch.no_grad()
    def _val_mae(self, params, active) -> np.ndarray:
        idx_list = [self.val_idx[e] for e in active]
        n_max = max(len(i) for i in idx_list)
        idx = torch.zeros(len(active), n_max, dtype=torch.long)
        mask = torch.zeros(len(active), n_max)
        for row, i in enumerate(idx_list):
            idx[row, : len(i)], mask[row, : len(i)] = i, 1.0
        idx, mask, rows = idx.to(self.device), mask.to(self.device), self._rows(active)
        total = torch.zeros(len(active), device=self.device)
        for s in range(0, n_max, self.cfg.eval_batch_size):
            part = idx[:, s : s + self.cfg.eval_batch_size]
            pred = self._forward(params, self._batch(rows, part), training=False)
            total += ((pred - self.y[part]).abs() * mask[:, s : s + part.shape[1]]).sum(dim=1)
        return (total / mask.sum(dim=1)).cpu().numpy()

    # --- the loop -----------------------------------------------------------------
    def _new_optimizer(self, params: list[torch.Tensor]) -> torch.optim.Adam:
        trainable = [p for p in params if p.requires_grad]
        # The fused kernel is ~10x faster than the per-tensor loop on CPU, and same maths.
        fused = self.device.type in ("cpu", "cuda")
        adam = torch.optim.AdamW if self.cfg.weight_decay else torch.optim.Adam
        return adam(trainable, lr=self.cfg.lr, eps=self.cfg.eps, weight_decay=self.cfg.weight_decay, fused=fused,
                    capturable=self.graphs)

    def run(self) -> list[FitResult]:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        state = self._load_state()
        if state is None:
            params = self._stack()
            optimizer = self._new_optimizer(params)
            state = {
                "epoch": 0,
                "step": 0,
                "active": list(range(self.E)),
                "best": [None] * self.E,
                "best_val": [math.inf] * self.E,
                "best_epoch": [0] * self.E,
                "wait": [0] * self.E,
                "history": [[] for _ in range(self.E)],
                "seconds": 0.0,
            }
        else:
            saved = zip(state.pop("params"), self._flags(), strict=True)
            params = [p.to(self.device).requires_grad_(t) for p, t in saved]
            optimizer = self._new_optimizer(params)
            optimizer.load_state_dict(state.pop("optimizer"))
            for g, gs in zip(self.generators, state.pop("generators"), strict=True):
                g.set_state(gs)
            self._set_global_rng(state.pop("global_rng", None))  # absent in older resume files
        start, last_save = time.perf_counter() - state["seconds"], time.perf_counter()
        bar = tqdm(
            total=cfg.max_epochs, initial=state["epoch"], disable=not cfg.progress,
            desc=f"fit x{self.E}" if self.E > 1 else "fit", unit="epoch", leave=False,
        )
        while state["active"] and state["epoch"] < cfg.max_epochs:
            active = state["active"]
            train_mae, state["step"] = self._train_epoch(params, optimizer, active, state["step"])
            val_mae = self._val_mae(params, active)
            state["epoch"] += 1
            stopped = self._early_stopping(state, params, active, train_mae, val_mae)
            keep_rows = [i for i, e in enumerate(active) if e not in stopped]
            if stopped and keep_rows:  # when none is left, the loop ends and nothing needs the stack
                params, optimizer = self._compact(params, optimizer, keep_rows)
            state["active"] = [active[i] for i in keep_rows]
            bar.update(1)
            bar.set_postfix(
                train=f"{np.mean(train_mae):.4f}", val=f"{np.min(val_mae):.4f}", active=len(state["active"])
            )
            if self.resume_path and time.perf_counter() - last_save > cfg.checkpoint_every_s:
                state["seconds"] = time.perf_counter() - start
                self._save_state(state, params, optimizer)
                last_save = time.perf_counter()
        bar.close()
        seconds = time.perf_counter() - start
        if self.resume_path and self.resume_path.exists():
            self.resume_path.unlink()
        return self._results(state, params, seconds)

    def _early_stopping(self, state, params, active, train_mae, val_mae) -> set[int]:
        stopped = set()
        for row, e in enumerate(active):
            state["history"][e].append((state["epoch"], float(train_mae[row]), float(val_mae[row])))
            if val_mae[row] < state["best_val"][e]:
                state["best_val"][e], state["best_epoch"][e], state["wait"][e] = float(val_mae[row]), state["epoch"], 0
                state["best"][e] = [p.detach()[row].cpu().clone() for p in params]
            else:
                state["wait"][e] += 1
                if state["wait"][e] >= self.cfg.patience:
                    stopped.add(e)
        return stopped

    def _compact(self, params, optimizer, keep_rows: list[int]):
        """Drop stopped models from the stack, keeping Adam's state of the others."""
        keep = torch.as_tensor(keep_rows, dtype=torch.long, device=self.device)
        new_params = [p.detach()[keep].clone().requires_grad_(p.requires_grad) for p in params]
        new_opt = self._new_optimizer(new_params)
        for old, new in zip(params, new_params, strict=True):
            if old in optimizer.state:
                s = optimizer.state[old]
                new_opt.state[new] = {
                    "step": s["step"], "exp_avg": s["exp_avg"][keep], "exp_avg_sq": s["exp_avg_sq"][keep],
                }
        return new_params, new_opt

    def _flags(self) -> list[bool]:
        return [t for t in self.trainable for _ in (0, 1)]

    def _results(self, state, params, seconds) -> list[FitResult]:
        results = []
        for e, model in enumerate(self.models):
            best = state["best"][e]
            if best is not None:
                self._write_back(model, best)
            history = pd.DataFrame(state["history"][e], columns=["epoch", "train_mae", "val_mae"])
            results.append(
                FitResult(history, state["best_epoch"][e], state["best_val"][e], seconds, asdict(self.cfg))
            )
        return results

    @torch.no_grad()
    def _write_back(self, model: NN17, best: list[torch.Tensor]) -> None:
        for li, layer in enumerate(model.layers):
            W, b = best[2 * li], best[2 * li + 1]
            layer.weight.copy_(W[: layer.in_features].T)
            layer.bias.copy_(b[0])

    # --- resume ---------------------------------------------------------------------
    def _fingerprint(self, X, y, seeds) -> str:
        """A digest of what shapes this training: data, split, seeds, settings and initial weights."""
        digest = hashlib.sha256()
        for part in [*(X if isinstance(X, list) else [X]), y, *self.train_idx, *self.val_idx]:
            digest.update(np.ascontiguousarray(np.asarray(part)).tobytes())
        settings = {k: v for k, v in asdict(self.cfg).items() if k not in ("progress", "checkpoint_every_s", "device")}
        digest.update(json.dumps([settings, [int(s) for s in seeds]], sort_keys=True, default=str).encode())
        for model in self.models:
            for tensor in model.state_dict().values():
                digest.update(tensor.detach().cpu().numpy().tobytes())
        return digest.hexdigest()

    def _save_state(self, state, params, optimizer) -> None:
        payload = {
            **state,
            "fingerprint": self.fingerprint,
            "params": [p.detach().cpu() for p in params],
            "optimizer": optimizer.state_dict(),
            "generators": [g.get_state() for g in self.generators],
            "global_rng": self._global_rng(),
        }
        with atomic_write(self.resume_path) as tmp:
            torch.save(payload, tmp)

    def _load_state(self) -> dict | None:
        if self.resume_path is None or not self.resume_path.exists():
            return None
        not_ours = f"cannot resume from {self.resume_path}: it is not a resume state of tlrl; delete it to start afresh"
        try:
            state = torch.load(self.resume_path, weights_only=True)
        except Exception:  # pickle, zip and torch errors vary; torch's advice to unpickle is never passed on
            raise TlrlError(not_ours) from None
        if not isinstance(state, dict) or not {"history", "params", "optimizer", "generators"} <= state.keys():
            raise TlrlError(not_ours)
        if len(state["history"]) != self.E:
            raise TlrlError(
                f"{self.resume_path} holds a run of {len(state['history'])} model(s), this one trains "
                f"{self.E}; delete it to start afresh"
            )
        if state.pop("fingerprint", None) != self.fingerprint:
            raise TlrlError(
                f"{self.resume_path} is the resume state of another run (other data, seed, settings or starting "
                "weights); rerun with that run's settings to resume it, or delete it to start afresh"
            )
        return state

    def _global_rng(self) -> dict:
        """The global generators that dropout draws from."""
        rng = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return rng

    def _set_global_rng(self, rng: dict | None) -> None:
        if not rng:
            return
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
