"""Named run sizes: ``smoke`` (seconds, CI), ``quick`` (CPU book), ``full`` (the paper's protocol with the
training settings of the authors' code, GPU)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from tlrl.automl import DEFAULT_PREPROCESSING, DEFAULT_REGRESSORS
from tlrl.errors import TlrlError
from tlrl.train import TrainConfig


@dataclass(frozen=True)
class Profile:
    """Everything that sets the size of a run. Any field can be overridden."""

    name: str
    train: TrainConfig
    n_folds: int = 10
    max_train_rows: int | None = None  # a seeded slice of the train part, None = all
    max_test_rows: int | None = None
    # the grid of source layers (RL:DL, TL+RL:DL) and of frozen-layer counts (TL:Freeze)
    layers: tuple[int, ...] = tuple(range(1, 16))
    layer_search: Literal["cv", "halving"] = "cv"
    # epochs and peak learning rate of the from-scratch SC:DL baselines, which converge more slowly
    # than transfer (None: train's); with a cosine schedule the patience grows with the epochs
    scratch_max_epochs: int | None = None
    scratch_lr: float | None = None
    # TrainConfig changes for SC:DL(EF) alone, on top of SC:DL's (e.g. {"weight_decay": 1.0}). SC:DL(PA)
    # keeps SC:DL's: on its unscaled attributes decay 1 raised the CV MAE from 0.197 to 0.240 (quick)
    scratch_ef_train: dict[str, Any] = field(default_factory=dict)
    # peak learning rate of the networks that start as the whole source (TL, TL:Freeze); None: train.lr
    transfer_lr: float | None = None
    halving_epochs: tuple[int, ...] = (2, 5, 10)  # epochs of each successive-halving rung, on fold 0
    halving_eta: int = 3  # each rung keeps the best 1/eta of its candidates
    # the learning curve (tlrl.curve): a fit on a small subsample trains for at least this many optimiser
    # steps (its epochs grow as its rows shrink)
    curve_min_steps: int = 250
    # the curve's grid of layers (and frozen-layer counts) to search; None: ``layers``
    curve_layers: tuple[int, ...] | None = None
    pretrain: TrainConfig = field(default_factory=TrainConfig)
    # a second, warm-restarted stage from an existing source (``tlrl pretrain --init-from``)
    pretrain_continue: TrainConfig = field(default_factory=TrainConfig)
    pretrain_rows: int | None = None
    automl_evals: int = 50
    automl_trial_timeout: float = 300.0
    automl_regressors: tuple[str, ...] = DEFAULT_REGRESSORS
    automl_preprocessing: tuple[str, ...] = DEFAULT_PREPROCESSING

    @property
    def description(self) -> str:
        """The settings that size this profile, in words for readers (the book's profile table)."""
        t = self.train
        rungs = self.halving_epochs
        share = {2: "half", 3: "third", 4: "quarter"}.get(self.halving_eta, f"1/{self.halving_eta}")
        search = "each cross-validated" if self.layer_search == "cv" else (
            f"by successive halving on fold 0 (rungs of {', '.join(map(str, rungs[:-1]))} and {rungs[-1]} "
            f"epochs, the best {share} going on)" if len(rungs) > 1 else
            f"by successive halving on fold 0 (one rung of {rungs[0]} epochs)")
        epochs = f"{t.warmup_epochs} warm-up epoch{'s' if t.warmup_epochs > 1 else ''}"
        warmup = f"{epochs}, then " if t.warmup_epochs else ""
        rates = (f"peak {self.learning_rates}, {warmup}cosine decay" if t.lr_schedule == "cosine"
                 else f"{warmup}constant {self.learning_rates}")
        decay = f"weight decay {t.weight_decay:g}, " if t.weight_decay else ""
        scratch_ef = f"{self.scratch_ef_settings}; " if self.scratch_ef_train else ""
        return (
            f"{self.n_folds}-fold CV on {self.max_train_rows or 'all'} train rows, "
            f"{self.max_test_rows or 'all'} test rows; batch {t.batch_size}, {rates}, "
            f"{t.precision}, {decay}{self.epoch_caps}, {t.stopping}; {scratch_ef}"
            f"the source layer (and the number of frozen layers of TL:Freeze) chosen among {layer_grid(self.layers)}, "
            f"{search}; AutoML {self.automl_evals} evals over {', '.join(self.automl_regressors)}"
        )

    @property
    def reductions(self) -> str:
        """The settings that size this profile, as every run records them (``metrics.json``, Table II's
        "Settings" line; chapter 10 compares them to reuse a fit), so its wording stays as it is;
        ``description`` says the same for readers."""
        t = self.train
        search = "CV of each" if self.layer_search == "cv" else (
            f"successive halving on fold 0 ({'/'.join(map(str, self.halving_epochs))} epochs per rung, "
            f"best 1/{self.halving_eta} go on)")
        schedule = f"warm-up {t.warmup_epochs} + {t.lr_schedule}" if t.warmup_epochs else t.lr_schedule
        decay = f"weight decay {t.weight_decay:g}, " if t.weight_decay else ""
        scratch_ef = f"{self.scratch_ef_settings}; " if self.scratch_ef_train else ""
        return (
            f"{self.n_folds}-fold CV on {self.max_train_rows or 'all'} train rows, "
            f"{self.max_test_rows or 'all'} test rows; batch {t.batch_size}, {self.learning_rates} {schedule}, "
            f"{t.precision}, {decay}{self.epoch_caps}, {t.stopping}; {scratch_ef}"
            f"layers {self.layers[0]}–{self.layers[-1]} ({len(self.layers)}), {search}; "
            f"AutoML {self.automl_evals} evals over {', '.join(self.automl_regressors)}"
        )

    @property
    def epoch_caps(self) -> str:
        """The epoch cap, and SC:DL's where it differs."""
        scratch = f" (SC:DL {self.scratch_max_epochs})" if self.scratch_max_epochs else ""
        return f"≤{self.train.max_epochs} epochs{scratch}"

    @property
    def learning_rates(self) -> str:
        """The peak learning rate, and those of TL and SC:DL where they differ."""
        others = [f"{name} {lr:g}" for name, lr in (("TL", self.transfer_lr), ("SC:DL", self.scratch_lr)) if lr]
        return f"lr {self.train.lr:g}" + (f" ({', '.join(others)})" if others else "")

    @property
    def scratch_ef_settings(self) -> str:
        """SC:DL(EF)'s own training settings, e.g. "SC:DL(EF) at batch 64, weight decay 1" (empty without)."""
        if not self.scratch_ef_train:
            return ""
        def setting(key: str, value: Any) -> str:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            return f"{key.removesuffix('_size').replace('_', ' ')} {f'{value:g}' if number else value}"

        return f"SC:DL(EF) at {', '.join(setting(k, v) for k, v in self.scratch_ef_train.items())}"

    def with_(self, **changes) -> Profile:
        """A copy with fields changed; ``train__lr=…`` style keys reach into ``train``."""
        nested = {k.split("__", 1)[1]: v for k, v in changes.items() if k.startswith("train__")}
        top = {k: v for k, v in changes.items() if not k.startswith("train__")}
        unknown = set(top) - {f.name for f in fields(self)}
        if unknown:
            raise TlrlError(f"unknown profile field(s): {sorted(unknown)}")
        return replace(self, train=self.train.with_(**nested), **top)


def layer_grid(layers: tuple[int, ...]) -> str:
    """A grid of layers in words: "layers 1–15" for a run of consecutive layers, else "layers 8 and 15"."""
    if len(layers) > 2 and list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"layers {layers[0]}–{layers[-1]}"
    if len(layers) == 1:
        return f"layer {layers[0]}"
    return f"layers {', '.join(map(str, layers[:-1]))} and {layers[-1]}"


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        train=TrainConfig(batch_size=128, lr=1e-3, max_epochs=2, patience=2, progress=False),
        n_folds=2,
        max_train_rows=400,
        max_test_rows=200,
        layers=(8, 15),
        layer_search="halving",
        halving_epochs=(1, 2),
        pretrain=TrainConfig(batch_size=256, lr=1e-3, max_epochs=2, patience=2, progress=False),
        pretrain_continue=TrainConfig(batch_size=256, lr=3e-4, max_epochs=1, patience=2, progress=False),
        pretrain_rows=3000,
        automl_evals=3,
        automl_trial_timeout=20.0,
        curve_min_steps=10,
    ),
    "quick": Profile(
        name="quick",
        # chosen by benchmarks/bench_recipe.py (README and the benchmark chapter show its table)
        train=TrainConfig(batch_size=256, lr=1e-3, lr_schedule="cosine", warmup_epochs=1, max_epochs=20,
                          patience=20, precision="bf16"),
        n_folds=5,
        # by benchmarks/bench_recipe.py on fold 0 (results/bench_recipe_lr.csv): fine-tuning the whole
        # source keeps more of it at lr 5e-4 (val 0.1049 against 0.1096 at 1e-3), SC:DL learns more
        # at 2e-3 (0.1304 against 0.1335); TL+RL, whose first layer starts at random, is worse at 5e-4
        # (0.1178 against 0.1140) and stays at 1e-3 with the RL rows
        transfer_lr=5e-4,
        scratch_max_epochs=40,
        scratch_lr=2e-3,
        # by bench_recipe.py: AdamW's decay 1 lowers SC:DL(EF)'s fold-0 val MAE from 0.1311 to 0.1279
        # (results/bench_recipe_wd.csv: 10-fold split, 3 seeds, H200; CPU 0.1304 to 0.1284). Batch 64 at
        # lr 7e-4 was the grid's best on fold 0 of quick's 5-fold split (val 0.1318, against 0.1321 at batch
        # 128 and lr 1e-3, 0.1354 at batch 256 and 2e-3; results/bench_recipe_scratch.csv, 3-5 seeds, H200),
        # and quick's whole 5-fold CV on the CPU confirmed it on every fold: 0.1309 against 0.1320 at batch
        # 128, for 1.5x its time. The transfer rows gain nothing beyond noise from decay once the source
        # itself was trained with it: they keep Adam
        scratch_ef_train={"batch_size": 64, "lr": 7e-4, "weight_decay": 1.0},
        layer_search="halving",
        # rungs of 3 and 6 epochs: shorter first rungs (1 or 2 epochs) drop the slow starters, such as
        # RL:DL(Dense) on layer 1, and pick a worse layer than exhaustive CV
        # (benchmarks/bench_layer_search.py, results/bench_layer_search.csv)
        halving_epochs=(3, 6),
        # the learning curve searches six layers, not fifteen: its many small fits are dear on a CPU, and the
        # benchmark's searches chose layers 1-3 (results/quick/sweep.csv)
        curve_layers=(1, 2, 3, 5, 8, 12),
        # 250 steps: on the curve's own subsamples (results/bench_curve_steps.csv, 3 seeds) 500 steps were no
        # better on validation at 100, 300 and 1,000 rows (SC:DL(EF) 0.446 against 0.426 at 100; TL 0.225
        # against 0.229 at 100, 0.218 against 0.216 at 300, 0.178 against 0.177 at 1,000) for up to twice the time
        curve_min_steps=250,
        pretrain=TrainConfig(
            batch_size=512, lr=6e-4, lr_schedule="cosine", warmup_epochs=1, max_epochs=25, patience=25
        ),
        pretrain_continue=TrainConfig(
            batch_size=512, lr=3e-4, lr_schedule="cosine", warmup_epochs=1, max_epochs=40, patience=40,
            precision="bf16",
        ),
        # gradient boosting only, on raw features (trees need no scaling): one learner of the full
        # search, with few trials, so that SC:ML runs in minutes on an ordinary CPU
        automl_evals=10,
        automl_trial_timeout=120.0,
        automl_regressors=("hist_gradient_boosting",),
        automl_preprocessing=("none",),
    ),
    "full": Profile(
        name="full",
        train=TrainConfig(),
        pretrain=TrainConfig(),
        automl_evals=100,
        automl_trial_timeout=600.0,
    ),
}


def get_profile(name: str | Profile, **overrides) -> Profile:
    """A named profile with optional field overrides."""
    if isinstance(name, Profile):
        return name.with_(**overrides) if overrides else name
    if not isinstance(name, str) or name not in PROFILES:
        raise TlrlError(f"unknown profile {name!r}: choose from {', '.join(PROFILES)} (or give a Profile)")
    return PROFILES[name].with_(**overrides) if overrides else PROFILES[name]
