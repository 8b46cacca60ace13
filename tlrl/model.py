"""NN-17 (ElemNet), layer activations, and the weight-transfer rules of TL and TL+RL."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from tlrl.catalog import HIDDEN_WIDTHS, N_HIDDEN

# ElemNet's dropout rates after the last layer of the 1024, 512, 256 and 128 blocks.
ELEMNET_DROPOUT = {4: 0.2, 7: 0.1, 10: 0.3, 13: 0.2}
ActivationKind = Literal["dense", "relu"]


class NN17(nn.Module):
    """ElemNet's 17-layer network: 16 Linear+ReLU layers and a linear output.

    Weights are Xavier-uniform and biases zero, as in Keras. ``dropout=True`` applies
    ElemNet's rates (0.2, 0.1, 0.3, 0.2) after the 1024, 512, 256 and 128 blocks; it is
    off by default because the reference TF2 code never applied it (its dropout
    layers are built but not called in the forward pass).
    """

    def __init__(self, n_inputs: int, dropout: bool = False, seed: int | None = None) -> None:
        super().__init__()
        self.n_inputs = n_inputs
        self.dropout = dropout
        widths = (n_inputs, *HIDDEN_WIDTHS)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.output = nn.Linear(HIDDEN_WIDTHS[-1], 1)
        self.reset_parameters(seed)

    def reset_parameters(self, seed: int | None = None) -> None:
        """Keras initialisation: Xavier-uniform weights, zero biases."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.weight, generator=generator)
            nn.init.zeros_(layer.bias)

    @property
    def layers(self) -> list[nn.Linear]:
        """All 17 Linear layers, the output last."""
        return [*self.hidden, self.output]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k, layer in enumerate(self.hidden, start=1):
            x = torch.relu(layer(x))
            if self.dropout and k in ELEMNET_DROPOUT:
                x = nn.functional.dropout(x, ELEMNET_DROPOUT[k], self.training)
        return self.output(x).squeeze(-1)


@torch.no_grad()
def activations(
    model: NN17,
    X: np.ndarray | torch.Tensor,
    layer: int,
    kind: ActivationKind = "relu",
    batch_size: int = 4096,
) -> np.ndarray:
    """Activations of hidden layer ``layer`` (1..16) for inputs ``X``, in batches.

    ``dense`` is the Linear output before its ReLU (the true pre-activation);
    ``relu`` is after it, so ``relu == max(dense, 0)``.
    """
    if not 1 <= layer <= N_HIDDEN:
        raise ValueError(f"layer must be in 1..{N_HIDDEN}, got {layer}")
    if kind not in ("dense", "relu"):
        raise ValueError(f"kind must be 'dense' or 'relu', got {kind!r}")
    model.eval()
    device = next(model.parameters()).device
    X = torch.as_tensor(X, dtype=torch.float32)
    out = []
    for start in range(0, len(X), batch_size):
        h = X[start : start + batch_size].to(device)
        for k, lin in enumerate(model.hidden[:layer], start=1):
            h = lin(h)
            if k < layer or kind == "relu":
                h = torch.relu(h)
        out.append(h.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, HIDDEN_WIDTHS[layer - 1]), np.float32)


def copy_weights(source: NN17, target: NN17, skip_first: bool = False) -> None:
    """Copy the source's layers into the target (TL), or all but the first (TL+RL).

    A shape mismatch raises ``ValueError``: nothing is skipped silently.
    """
    pairs = list(zip(source.layers, target.layers, strict=True))
    for k, (src, dst) in enumerate(pairs[1:] if skip_first else pairs, start=2 if skip_first else 1):
        if src.weight.shape != dst.weight.shape:
            raise ValueError(
                f"layer {k}: source weight {tuple(src.weight.shape)} does not fit "
                f"target {tuple(dst.weight.shape)}"
            )
        with torch.no_grad():
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)


def freeze_first(model: NN17, k: int) -> None:
    """Freeze the first ``k`` hidden layers (ElemNet-TL's partial freezing)."""
    if not 0 <= k <= N_HIDDEN:
        raise ValueError(f"can freeze 0..{N_HIDDEN} layers, got {k}")
    for i, layer in enumerate(model.hidden):
        layer.requires_grad_(i >= k)


@torch.no_grad()
def weight_change(reference: NN17, model: NN17) -> np.ndarray:
    """How far each of the 17 layers' weights moved from ``reference``: ‖W − W_ref‖ / ‖W_ref‖ (Frobenius).

    Element k − 1 is layer k (the output layer last). A layer whose shape differs from the reference's
    (TL+RL's first layer against the source) is NaN. Biases are left out: a random start has them at zero.
    """
    return np.array([
        float(torch.linalg.norm(m.weight.cpu() - r.weight.cpu()) / torch.linalg.norm(r.weight.cpu()))
        if m.weight.shape == r.weight.shape else np.nan
        for r, m in zip(reference.layers, model.layers, strict=True)
    ])
