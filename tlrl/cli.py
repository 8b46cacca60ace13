"""The ``tlrl`` command line: featurize, pretrain, fit, predict, benchmark.

Every user error ends as one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from tlrl.errors import TlrlError


def _featurize(args: argparse.Namespace) -> None:
    from tlrl.data import read_table
    from tlrl.featurize import featurize
    from tlrl.io import atomic_write

    # an explicit --target-col must exist; otherwise a 'target' column is used when present
    target_col = args.target_col or "target"
    df = read_table(Path(args.input), args.formula_col, target_col, require_target=args.target_col is not None)
    features, kept = featurize(df, args.kind, errors=args.errors)
    table = features.copy()
    table.insert(0, "formula", kept["formula"].to_numpy())
    if "target" in kept:
        table.insert(1, "target", kept["target"].to_numpy())
    with atomic_write(args.output) as tmp:
        table.to_parquet(tmp)
    print(f"wrote {len(table)} rows x {features.shape[1]} {args.kind.upper()} features to {args.output}")


def _pretrain(args: argparse.Namespace) -> None:
    from tlrl.pretrain import pretrain

    _, card = pretrain(args.output, data=args.data, profile=args.profile, data_dir=args.data_dir, seed=args.seed)
    print(f"source model in {args.output}: OQMD test MAE {card['test_mae']:.4f} eV/atom")


def _fit(args: argparse.Namespace) -> None:
    from tlrl.methods import run

    metrics = run(
        args.method, args.input, source=args.source, layer=args.layer, profile=args.profile,
        seed=args.seed, data_dir=args.data_dir, out_dir=args.output,
    )
    print(
        f"{metrics['paper_name']}: CV MAE {metrics['cv_mae_mean']:.4f} ± {metrics['cv_mae_std']:.4f}, "
        f"test MAE {metrics['test_mae']:.4f} (ensemble {metrics['test_mae_ensemble']:.4f}) -> {args.output}"
    )


def _predict(args: argparse.Namespace) -> None:
    from tlrl.data import read_table
    from tlrl.io import atomic_write
    from tlrl.predict import predict

    df = read_table(Path(args.input), args.formula_col, target_col=None)
    preds = predict(args.model_dirs, df["formula"], errors=args.errors)
    with atomic_write(args.output) as tmp:
        preds.to_csv(tmp, index=False)
    print(f"wrote {len(preds)} predictions to {args.output}")


def _benchmark(args: argparse.Namespace) -> None:
    from tlrl.benchmark import run_benchmark

    results = run_benchmark(
        args.dataset, args.output, profile=args.profile, source=args.source, seed=args.seed,
        data_dir=args.data_dir, methods=args.methods, force=args.force,
    )
    print(results[["method", "cv_mae_mean", "cv_mae_std", "best_layer", "test_mae"]].to_string(index=False))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tlrl", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, profile: bool = True) -> None:
        p.add_argument("--data-dir", default=None, help="where registry datasets live (else $TLRL_DATA_DIR)")
        p.add_argument("--seed", type=int, default=0)
        if profile:
            p.add_argument("--profile", default="quick", help="smoke | quick | full")

    p = sub.add_parser("featurize", help="EF or PA features of a CSV, to parquet")
    p.add_argument("input")
    p.add_argument("--kind", choices=["ef", "pa"], required=True)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--formula-col", default="formula")
    p.add_argument("--target-col", default=None, help="required when given; default: 'target' if present")
    p.add_argument("--errors", choices=["warn", "raise"], default="warn")
    p.set_defaults(func=_featurize)

    p = sub.add_parser("pretrain", help="train the NN-17 source model on OQMD")
    p.add_argument("--data", default="oqmd_formation_enthalpy")
    p.add_argument("-o", "--output", required=True)
    common(p)
    p.set_defaults(func=_pretrain)

    p = sub.add_parser("fit", help="run one configuration (10-fold CV + test) on a dataset or CSV")
    p.add_argument("input", help="registry name or CSV with formula,target[,split]")
    p.add_argument("--method", required=True)
    p.add_argument("--layer", type=int, default=None, help="source layer 1..15 (RL/TL+RL); default: sweep")
    p.add_argument("--source", default=None, help="source checkpoint dir (default: the shipped model)")
    p.add_argument("-o", "--output", required=True)
    common(p)
    p.set_defaults(func=_fit)

    p = sub.add_parser("predict", help="predict with one checkpoint or a run's fold ensemble")
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR")
    p.add_argument("input", help="CSV with a formula column")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--formula-col", default="formula")
    p.add_argument("--errors", choices=["warn", "raise"], default="warn")
    p.set_defaults(func=_predict)

    p = sub.add_parser("benchmark", help="every configuration and the layer sweeps; writes results.csv, table2.md")
    p.add_argument("dataset")
    p.add_argument("--source", default=None)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--methods", nargs="*", default=None, help="a subset of method slugs")
    p.add_argument("--force", action="store_true", help="rerun configurations that already have results")
    common(p)
    p.set_defaults(func=_benchmark)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tlrl`` console script."""
    args = build_parser().parse_args(argv)
    warnings.simplefilter("default")
    try:
        args.func(args)
    except TlrlError as exc:
        print(f"tlrl {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tlrl {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
