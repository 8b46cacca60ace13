"""Named run sizes: ``smoke`` (seconds, CI), ``quick`` (CPU book), ``full`` (the paper, GPU)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

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
    layers: tuple[int, ...] = tuple(range(1, 16))
    freeze_layers: int = 8  # tl-freeze: how many hidden layers stay fixed
    pretrain: TrainConfig = field(default_factory=TrainConfig)
    pretrain_rows: int | None = None
    automl_evals: int = 50
    automl_trial_timeout: float = 300.0

    @property
    def reductions(self) -> str:
        """The settings that size this profile, for results tables."""
        t = self.train
        return (
            f"{self.n_folds}-fold CV on {self.max_train_rows or 'all'} train rows, "
            f"{self.max_test_rows or 'all'} test rows; batch {t.batch_size}, lr {t.lr:g}, "
            f"≤{t.max_epochs} epochs, patience {t.patience}; layers {','.join(map(str, self.layers))}; "
            f"AutoML {self.automl_evals} evals"
        )

    def with_(self, **changes) -> Profile:
        """A copy with fields changed; ``train__lr=…`` style keys reach into ``train``."""
        nested = {k.split("__", 1)[1]: v for k, v in changes.items() if k.startswith("train__")}
        top = {k: v for k, v in changes.items() if not k.startswith("train__")}
        unknown = set(top) - {f.name for f in fields(self)}
        if unknown:
            raise TlrlError(f"unknown profile field(s): {sorted(unknown)}")
        return replace(self, train=self.train.with_(**nested), **top)


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        name="smoke",
        train=TrainConfig(batch_size=128, lr=1e-3, max_epochs=2, patience=2, progress=False),
        n_folds=2,
        max_train_rows=400,
        max_test_rows=200,
        layers=(8, 15),
        pretrain=TrainConfig(batch_size=256, lr=1e-3, max_epochs=2, patience=2, progress=False),
        pretrain_rows=3000,
        automl_evals=3,
        automl_trial_timeout=20.0,
    ),
    "quick": Profile(
        name="quick",
        train=TrainConfig(batch_size=256, lr=5e-4, max_epochs=30, patience=5),
        n_folds=5,
        max_train_rows=6000,
        layers=(3, 7, 11, 15),
        pretrain=TrainConfig(
            batch_size=512, lr=6e-4, lr_schedule="cosine", warmup_epochs=1, max_epochs=25, patience=25
        ),
        automl_evals=20,
        automl_trial_timeout=60.0,
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
    if name not in PROFILES:
        raise TlrlError(f"unknown profile {name!r}: choose from {', '.join(PROFILES)}")
    return PROFILES[name].with_(**overrides) if overrides else PROFILES[name]
