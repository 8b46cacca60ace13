"""Continue training the source model on a machine without pymatgen (such as a lent GPU machine).

    # here: the OQMD split as EF, the same rows `tlrl pretrain` trains on
    TLRL_DATA_DIR=../shared/data .venv/bin/python scripts/pretrain_on_gpu.py prepare --out artifacts/source_inputs
    # there: `tlrl pretrain --init-from` with quick's continuation recipe, its epochs and learning rate set here
    python3 scripts/pretrain_on_gpu.py run --inputs artifacts/source_inputs --init-from SOURCE_DIR --out OUT_DIR \
        --epochs 250 --lr 3e-4

The checkpoint written is what ``tlrl pretrain`` writes: weights and a card whose ``train_config``
is the recipe that ran and whose ``init_from`` keeps the earlier stages.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from tlrl.io import write_json
from tlrl.pretrain import SourceSplit, source_split, train_source
from tlrl.profiles import get_profile

ARRAYS = ("X", "y", "train", "val", "test")


def prepare(out: Path, data_dir: str | None, seed: int) -> None:
    split = source_split(data_dir=data_dir, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "split.npz", **{name: getattr(split, name) for name in ARRAYS})
    write_json(out / "split.json", {"data": split.data, "rows": split.rows, "seed": seed})
    print(f"{out}: {split.rows}")


def run(args: argparse.Namespace) -> None:
    meta = json.loads((Path(args.inputs) / "split.json").read_text())
    with np.load(Path(args.inputs) / "split.npz") as npz:
        split = SourceSplit(meta["data"], *(npz[name] for name in ARRAYS), meta["rows"])
    quick = get_profile("quick")
    recipe = quick.pretrain_continue.with_(max_epochs=args.epochs, patience=args.epochs, lr=args.lr,
                                           batch_size=args.batch, precision=args.precision,
                                           weight_decay=args.weight_decay, progress=False)
    _, card = train_source(args.out, split, quick.with_(pretrain_continue=recipe), meta["seed"], args.init_from,
                           dropout=args.dropout)
    print(f"OQMD val {card['val_mae']:.4f} test {card['test_mae']:.4f}, best epoch {card['best_epoch']} of "
          f"{len(card['history']['epoch'])}, {card['seconds']:.0f} s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare")
    prep.add_argument("--out", required=True, type=Path)
    prep.add_argument("--data-dir", default=None)
    prep.add_argument("--seed", type=int, default=0)
    go = sub.add_parser("run")
    go.add_argument("--inputs", required=True)
    go.add_argument("--init-from", required=True)
    go.add_argument("--out", required=True)
    go.add_argument("--epochs", type=int, required=True)
    go.add_argument("--lr", type=float, required=True)
    go.add_argument("--batch", type=int, default=512)
    go.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    go.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled weight decay")
    go.add_argument("--dropout", action="store_true", help="train with ElemNet's dropout rates")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        prepare(args.out, args.data_dir, args.seed)
    else:
        run(args)


if __name__ == "__main__":
    main()
