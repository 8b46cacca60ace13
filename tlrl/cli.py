"""The ``tlrl`` command line: data, featurize, pretrain, fit, predict, benchmark, curve, show.

Every user error ends as one line on stderr, ``tlrl <command>: error: ...``, and exit code 2,
never a traceback; output paths are checked before any work starts (``tlrl.io``, ``tlrl.outputs``).
An interrupt exits with 130, SIGTERM with 143, both after removing temporary files.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import warnings
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from tlrl import __version__
from tlrl.catalog import METHODS, PROFILE_NAMES
from tlrl.errors import TlrlError
from tlrl.extras import require_for
from tlrl.io import STDOUT, check_writable, inside, output_lock, same_file, table_format, write_table

if TYPE_CHECKING:  # torch, scikit-learn and pandas load only once a command runs: --help answers at once
    import pandas as pd

DESCRIPTION = """\
tlrl reproduces Gupta et al., "Combining Transfer Learning and Representation Learning to
Improve Predictive Analytics on Small Materials Data": a deep network (NN-17) pretrained on
OQMD formation enthalpies is transferred to a small dataset by fine-tuning (TL), used as a
feature extractor (RL), or both (TL+RL), and compared with models trained from scratch (SC).

Data: a registry name (jarvis_formation_energy, ...) or a CSV with a formula and a target column
(and optionally a train/test 'split' column); gzipped CSVs work too."""

EPILOG = """\
examples:
  tlrl fit jarvis_formation_energy --method tl-finetune --profile smoke -o runs/tl
  tlrl predict runs/tl new_formulas.csv -o predictions.csv
  tlrl benchmark jarvis_formation_energy --profile quick -o results/quick
  tlrl curve my.csv --sizes 100,300,1000 --methods sc-dl-ef,tl-finetune,zero-shot -o results/curve

environment:
  TLRL_DATA_DIR   folder holding the registry datasets (checked against tlrl's SHA-256 registry)
  TLRL_CACHE_DIR  cache of downloads and features (default: the platform's user cache folder)
  TLRL_DATA_URL   base URL the registry datasets are downloaded from (default: this project's release)

Run 'tlrl <command> --help' for a command's options."""

PROFILE_HELP = {"smoke": "seconds, a check", "quick": "minutes to hours on a CPU",
                "full": "the paper's protocol with the authors' code's training settings, GPU"}
SEED_MAX = 2**32 - 1


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other tlrl error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def _integer(text: str) -> int:
    """``text`` as an integer in ASCII digits; ValueError otherwise (``int`` also takes '２０' and '1_0')."""
    if not re.fullmatch(r"-?[0-9]+", text.strip()):
        raise ValueError(f"not an integer: {text!r}")
    return int(text)


def _seed(text: str) -> int:
    try:
        value = _integer(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {SEED_MAX}, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {SEED_MAX}, got {value}")
    return value


def _output_file(output: str, input_path: str, fmt: str, models: list[str] = ()) -> None:
    """Refuse, before any work, an output that would overwrite the input or a model, that cannot be
    written, or whose extension names no table format."""
    if same_file(output, input_path):
        raise TlrlError(f"the output {output} is the input file; choose another -o")
    for model in models:
        if inside(output, model):
            raise TlrlError(f"the output {output} is inside the model folder {model}; choose another -o")
    check_writable(output)
    table_format(output, fmt)


def _report(args: argparse.Namespace, line: str) -> None:
    """The closing summary: on stdout, or on stderr when the output itself goes to stdout."""
    print(line, file=sys.stderr if args.output == STDOUT else sys.stdout)


def _load_input(args: argparse.Namespace) -> pd.DataFrame:
    """The dataset of ``fit``/``benchmark`` as a frame that remembers its name."""
    from tlrl.data import REGISTRY, load_dataset

    custom = args.formula_col != "formula" or args.target_col != "target"
    if custom and args.input in REGISTRY:
        raise TlrlError(f"--formula-col/--target-col apply to a CSV; {args.input} is a registry dataset")
    df = load_dataset(args.input, args.data_dir, args.formula_col, args.target_col, seed=args.seed)
    df.attrs["name"] = args.input
    return df


def _featurize(args: argparse.Namespace) -> None:
    from tlrl.data import read_table
    from tlrl.featurize import featurize

    _output_file(args.output, args.input, "parquet")
    # an explicit --target-col must exist; otherwise a 'target' column is used when present
    target_col = args.target_col or "target"
    df = read_table(Path(args.input), args.formula_col, target_col, require_target=args.target_col is not None)
    features, kept = featurize(df, args.kind, errors=args.errors)
    table = features.copy()
    table.insert(0, "formula", kept["formula"].to_numpy())
    if "target" in kept:
        table.insert(1, "target", kept["target"].to_numpy())
    write_table(args.output, table, "parquet")
    _report(args, f"wrote {len(table)} rows x {features.shape[1]} {args.kind.upper()} features to {args.output}")


def _pretrain(args: argparse.Namespace) -> None:
    from tlrl.data import OQMD_DATASETS
    from tlrl.pretrain import pretrain

    check_writable(args.output, folder=True)
    if args.data_option is not None:
        warnings.warn("--data is deprecated: give the data as the first argument, 'tlrl pretrain DATA -o DIR'",
                      FutureWarning, stacklevel=1)
    data = args.data_option or args.data
    with output_lock(args.output):
        _, card = pretrain(args.output, data=data, profile=_profile(args), data_dir=args.data_dir,
                           seed=args.seed, init_from=args.init_from, force=args.force)
    unit = " eV/atom" if data in OQMD_DATASETS else ""
    print(f"source model in {args.output}: test MAE {card['test_mae']:.4f}{unit} on {data}")


def _fit(args: argparse.Namespace) -> None:
    from tlrl.methods import run
    from tlrl.outputs import claim_folder

    check_writable(args.output, folder=True)
    claim_folder(args.output, "fit", args.force, inputs=[args.input, args.source])
    if args.source is not None and not METHODS[args.method].uses_source:
        raise TlrlError(f"method {args.method!r} trains from scratch and uses no source model; drop --source")
    require_for([args.method])
    with output_lock(args.output):
        metrics = run(
            args.method, _load_input(args), source=args.source, layer=args.layer, profile=_profile(args),
            seed=args.seed, data_dir=args.data_dir, out_dir=args.output,
        )
    print(
        f"{metrics['paper_name']}: CV MAE {metrics['cv_mae_mean']:.4f} ± {metrics['cv_mae_std']:.4f}, "
        f"test MAE {metrics['test_mae']:.4f} (ensemble {metrics['test_mae_ensemble']:.4f}) -> {args.output}"
    )


def _predict(args: argparse.Namespace) -> None:
    from tlrl.data import read_table
    from tlrl.predict import predict

    _output_file(args.output, args.input, "csv", args.model_dirs)
    df = read_table(Path(args.input), args.formula_col, target_col=None)
    preds = predict(args.model_dirs, df["formula"], errors=args.errors)
    write_table(args.output, preds, "csv")
    unusable = int((preds["problem"] != "").sum())
    _report(args, f"wrote {len(preds)} rows to {args.output}"
            + (f" ({unusable} without a prediction)" if unusable else ""))


def _benchmark(args: argparse.Namespace) -> None:
    from tlrl.benchmark import run_benchmark

    check_writable(args.output, folder=True)
    require_for(args.methods or list(METHODS))
    with output_lock(args.output), _client(args) as client:
        results = run_benchmark(
            _load_input(args), args.output, profile=_profile(args), source=args.source, seed=args.seed,
            data_dir=args.data_dir, methods=args.methods, force=args.force, client=client,
        )
    print(results[["method", "cv_mae_mean", "cv_mae_std", "best_layer", "test_mae"]].to_string(index=False))


def _curve(args: argparse.Namespace) -> None:
    from tlrl.curve import run_curve, summarize

    check_writable(args.output, folder=True)
    twice = sorted(n for n, count in Counter(n for n, _ in args.seeds_at).items() if count > 1)
    if twice:
        raise TlrlError(f"--seeds-at gives the size(s) {twice} more than once; give each size once")
    with _client(args) as client:  # run_curve claims and locks the folder (the frame carries the input's name)
        curve = run_curve(
            _load_input(args), args.output, sizes=args.sizes, methods=args.methods, seeds=args.seeds,
            profile=_profile(args), source=args.source, data_dir=args.data_dir, seeds_at=dict(args.seeds_at),
            force=args.force, client=client,
        )
    table = summarize(curve).pivot(index="method", columns="size", values="test_mae")
    print(f"test MAE (mean over seeds) by training rows:\n{table.round(4).to_string()}")


def _client(args: argparse.Namespace):
    """The Dask client of --cluster (closed on leaving), or none: without --cluster Dask is not imported."""
    if args.cluster is None:
        return nullcontext()
    from tlrl.cluster import connect

    return connect(args.cluster)


def _int_list(text: str) -> list[int]:
    try:
        values = [_integer(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be integers separated by commas, got {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"must not be negative, got {text!r}")
    return values


def _size_seeds(text: str) -> tuple[int, list[int]]:
    size, sep, seeds = text.partition("=")
    if not sep or not re.fullmatch(r"[0-9]+", size.strip()):
        raise argparse.ArgumentTypeError(f"must be one SIZE=SEEDS such as 10000=0 or 10000=0,1, got {text!r}")
    return int(size), _int_list(seeds)


def _profile(args: argparse.Namespace):
    """The --profile, with --device applied to every training it runs (the name alone without --device)."""
    if args.device is None:
        return args.profile
    from tlrl.profiles import get_profile

    prof = get_profile(args.profile)
    return prof.with_(train__device=args.device, pretrain=prof.pretrain.with_(device=args.device),
                      pretrain_continue=prof.pretrain_continue.with_(device=args.device))


def _device(text: str) -> str:
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def _data(args: argparse.Namespace) -> None:
    from tlrl.data import DATASETS, REGISTRY, datasets, download_dataset, locate

    unknown = [name for name in args.names if name not in REGISTRY]
    if unknown:
        raise TlrlError(f"no dataset {', '.join(unknown)}; 'tlrl data list' names them: {', '.join(REGISTRY)}")
    if args.action == "list":
        print(datasets().to_string(index=False))
    elif args.action == "download":
        if not args.all and not args.names:
            raise TlrlError("name a dataset, or pass --all for the paper's datasets")
        for name in DATASETS if args.all else args.names:
            print(download_dataset(name))
    elif len(args.names) != 1:
        raise TlrlError("'tlrl data path' takes one dataset name")
    else:
        path = locate(args.names[0], args.data_dir)
        if path is None:
            raise TlrlError(f"dataset {args.names[0]} is not on disk: run 'tlrl data download {args.names[0]}' first")
        print(path)


def _show(args: argparse.Namespace) -> None:
    from tlrl.show import describe

    print(describe(args.folder))


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=_device, default=None,
                   help="where to train: cpu, cuda, cuda:N or mps (default: cuda, then mps, then cpu)")


def _add_run_options(p: argparse.ArgumentParser, profile: bool = True, seed: bool = True) -> None:
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="folder holding the registry datasets (default: $TLRL_DATA_DIR, then the cache/download)")
    if seed:
        p.add_argument("--seed", type=_seed, default=0,
                       help=f"seed of the data split, CV folds and weight inits, 0..{SEED_MAX} (default: 0)")
    if profile:
        sizes = "; ".join(f"{name}: {PROFILE_HELP.get(name, '')}" for name in PROFILE_NAMES)
        p.add_argument("--profile", default="quick", choices=list(PROFILE_NAMES),
                       help=f"how big a run is ({sizes}) (default: quick)")


def _add_cluster(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="run the tasks (features, fits, search rungs) on Dask: local or local:N (N worker processes "
                        "on this machine) or tcp://HOST:PORT (a running scheduler); needs the cluster extra "
                        "(default: in this process)")


def _add_columns(p: argparse.ArgumentParser, target_help: str = "column of the target (default: target)") -> None:
    p.add_argument("--formula-col", default="formula", metavar="NAME",
                   help="column of the chemical formulas (default: formula)")
    p.add_argument("--target-col", default="target", metavar="NAME", help=target_help)


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="tlrl", description=DESCRIPTION, epilog=EPILOG, formatter_class=fmt)
    parser.add_argument("--version", action="version", version=f"tlrl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    methods = "; ".join(f"{slug} = {m.paper_name}" for slug, m in METHODS.items())

    p = sub.add_parser(
        "data", help="list, download or locate the registry datasets",
        description="list: every registry dataset (name, rows, property, unit, source, citation). download NAME "
                    "[NAME ...] | --all: into the cache (checked against tlrl's SHA-256 registry); prints each file. "
                    "path NAME: the file a run would read (--data-dir, $TLRL_DATA_DIR, then the cache).",
    )
    p.add_argument("action", choices=["list", "download", "path"])
    p.add_argument("names", nargs="*", metavar="NAME", help="registry dataset name(s)")
    p.add_argument("--all", action="store_true", help="download: every paper dataset")
    p.add_argument("--data-dir", default=None, metavar="DIR", help="path: look here first (default: $TLRL_DATA_DIR)")
    p.set_defaults(parser=p, func=_data)

    p = sub.add_parser(
        "featurize", help="EF or PA features of a CSV, to parquet or CSV",
        description="Compute EF (86 element fractions, ElemNet's order) or PA (145 Magpie attributes) for the "
                    "formulas of a CSV and write them, with the formula and target, to a parquet or CSV file (by "
                    "its extension). Rows with unusable formulas are dropped with a warning (or, --errors raise, "
                    "refused). Element symbols are case-sensitive; D and T count as H.",
    )
    p.add_argument("input", help="CSV with a formula column (and optionally a target column)")
    p.add_argument("--kind", choices=["ef", "pa"], required=True, help="ef: element fractions; pa: Magpie attributes")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the file to write: .parquet, .csv or .csv.gz, or - for stdout (parquet)")
    _add_columns(p, "column of the target; required when given (default: 'target' when present)")
    p.set_defaults(target_col=None)
    p.add_argument("--errors", choices=["warn", "raise"], default="warn",
                   help="unusable formulas: warn and drop the rows, or stop (default: warn)")
    p.set_defaults(parser=p, func=_featurize)

    p = sub.add_parser(
        "pretrain", help="train the NN-17 source model on OQMD",
        description="Train the source model (NN-17 on element fractions) on OQMD formation enthalpies with a "
                    "seeded 80:10:10 split, and save it with its card. An interrupted run resumes from the "
                    "output folder.",
    )
    p.add_argument("data", nargs="?", default="oqmd_formation_enthalpy",
                   help="registry name or CSV to pretrain on (default: oqmd_formation_enthalpy)")
    p.add_argument("--data", dest="data_option", default=None, help=argparse.SUPPRESS)  # deprecated spelling
    p.add_argument("--init-from", default=None, metavar="SOURCE_DIR",
                   help="restart from this source checkpoint (same data and seed) with a second cosine stage")
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="folder for the checkpoint (new, empty, or an interrupted pretrain's to resume)")
    p.add_argument("--force", action="store_true", help="replace a finished source model in the output folder")
    _add_run_options(p)
    _add_device(p)
    p.set_defaults(parser=p, func=_pretrain)

    p = sub.add_parser(
        "fit", help="run one configuration (K-fold CV + test) on a dataset or CSV",
        description="Run one configuration of the paper's Table I: K-fold cross-validation on the train part "
                    "(the profile sets K), the best fold's model on the test part. Writes metrics.json, "
                    "test_predictions.csv and, for the NN-17 methods, one checkpoint per fold (for 'tlrl predict') "
                    "to the output folder; the SC:ML and peer methods keep no models.",
    )
    p.add_argument("input", help="registry name or CSV with a formula and a target column (and optionally 'split')")
    p.add_argument("--method", required=True, choices=list(METHODS), metavar="METHOD", help=f"one of: {methods}")
    p.add_argument("--layer", type=int, default=None, metavar="1..15",
                   help="source layer for rl-dl-*/tlrl-dl-*, frozen layers for tl-freeze (default: searched)")
    p.add_argument("--source", default=None, metavar="SOURCE_DIR",
                   help="source checkpoint for TL/RL methods (default: oqmd, the model shipped with tlrl)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="run folder to write (must be new or empty)")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier 'tlrl fit' run folder as a whole (never a folder of other files)")
    _add_columns(p)
    _add_run_options(p)
    _add_device(p)
    p.set_defaults(parser=p, func=_fit)

    p = sub.add_parser(
        "predict", help="predict with one checkpoint or a run's fold ensemble",
        description="Predict the target for the formulas of a CSV. Several checkpoints (a run folder stands for "
                    "its fold checkpoints) give the mean and std. The output has one row per input row, in order: "
                    "formula, prediction, std (empty for one model), problem (why a row has no prediction).",
    )
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR",
                   help="a checkpoint, a 'tlrl fit' run folder, or oqmd (the source model shipped with tlrl)")
    p.add_argument("input", help="CSV with a formula column")
    p.add_argument("-o", "--output", required=True, metavar="FILE",
                   help="the file to write: .csv, .csv.gz or .parquet, or - for stdout (CSV)")
    p.add_argument("--formula-col", default="formula", metavar="NAME",
                   help="column of the chemical formulas (default: formula)")
    p.add_argument("--errors", choices=["warn", "raise"], default="warn",
                   help="unusable formulas: warn and leave the prediction empty, or stop (default: warn)")
    p.set_defaults(parser=p, func=_predict)

    p = sub.add_parser(
        "benchmark", help="every configuration; writes results.csv, sweep.csv, table2.md",
        description="Run the configurations (all by default) into a results folder, each as soon as it finishes, "
                    "and rebuild results.csv, sweep.csv and table2.md. A rerun resumes: finished configurations "
                    "are skipped. A folder made with another dataset, profile, seed, source or tlrl version is "
                    "refused (see its provenance.json).",
    )
    p.add_argument("input", metavar="dataset", help="registry name or CSV with a formula and a target column")
    p.add_argument("--source", default=None, metavar="SOURCE_DIR",
                   help="source checkpoint (default: the model shipped with tlrl)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="results folder (resumed when it exists)")
    p.add_argument("--methods", nargs="+", default=None, choices=list(METHODS), metavar="METHOD",
                   help=f"a subset of the configurations (default: all): {methods}")
    p.add_argument("--force", action="store_true",
                   help="rerun finished configurations; start a folder made with other settings afresh")
    _add_columns(p)
    _add_run_options(p)
    _add_device(p)
    _add_cluster(p)
    p.set_defaults(parser=p, func=_benchmark)

    p = sub.add_parser(
        "curve", help="test MAE against the number of training rows; writes curve.csv, summary.csv, paired.csv",
        description="The learning curve: for each size and seed, a seeded subsample of the train part (each "
                    "smaller one inside the larger), a fifth of it held out for validation (best epoch, layer), "
                    "every method on the same rows, tested on the whole test part. Also three reference lines: "
                    "the mean predictor, the source model as it is (zero-shot) and the source plus a fitted "
                    "offset. Each (size, method) is written as soon as it finishes; a rerun resumes.",
    )
    p.add_argument("input", metavar="dataset", help="registry name or CSV with a formula and a target column")
    p.add_argument("--sizes", type=_int_list, default=None, metavar="N,N,...",
                   help="training-set sizes, subsampled from the train part (default: those of 50,100,300,1000,3000,"
                        "10000 that the train part holds)")
    p.add_argument("--methods", type=lambda t: t.split(","), default=None, metavar="M,M,...",
                   help="configurations and reference lines (default: all of them): sc-dl-ef, peer-hgb-pa, "
                        "tl-finetune, tl-freeze, rl-dl-relu, rl-dl-dense, tlrl-dl-relu, tlrl-dl-dense, mean, "
                        "zero-shot, offset")
    p.add_argument("--seeds", type=_int_list, default=[0, 1, 2], metavar="S,S,...",
                   help="seeds: each gives its own subsample and initialisation (default: 0,1,2)")
    p.add_argument("--seeds-at", type=_size_seeds, action="append", default=[], metavar="SIZE=S,S",
                   help="other seeds at one size, e.g. 10000=0 to run one seed where a fit is dear (repeatable, "
                        "once per size)")
    p.add_argument("--source", default=None, metavar="SOURCE_DIR",
                   help="source checkpoint (default: the model shipped with tlrl)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="results folder (resumed when it exists)")
    p.add_argument("--force", action="store_true",
                   help="rerun finished units; start a folder made with other settings afresh")
    _add_columns(p)
    _add_run_options(p, seed=False)
    _add_device(p)
    _add_cluster(p)
    p.set_defaults(parser=p, func=_curve, seed=0)

    p = sub.add_parser(
        "show", help="what a run or benchmark folder holds",
        description="Print what a 'tlrl fit' run folder or a 'tlrl benchmark' results folder holds: method, "
                    "dataset, profile and seed; CV and test MAE; the layer; the models kept.",
    )
    p.add_argument("folder", metavar="RUN_OR_BENCHMARK_DIR")
    p.set_defaults(parser=p, func=_show)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``tlrl`` console script; returns the exit code."""
    try:
        args, extra = build_parser().parse_known_args(argv)
        if extra:  # argparse would report these under the bare 'tlrl'
            args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, usage errors: argparse has printed them
        return int(exc.code or 0)
    prefix = f"tlrl {args.command}"
    format_warning = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"{prefix}: warning: {' '.join(str(message).split())}\n"
    warnings.simplefilter("default")
    on_term = _terminate_as_interrupt()
    try:
        if getattr(args, "device", None) is not None:  # every command with --device, before any folder
            from tlrl.train import check_device

            check_device(args.device)
        args.func(args)
    except TlrlError as exc:
        print(f"{prefix}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except _Terminated:
        print(f"{prefix}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{prefix}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = format_warning
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every temporary file and folder is cleaned up."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated


def _terminate_as_interrupt():
    """Make SIGTERM raise ``_Terminated``; return the handler to restore (None off the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # signals can only be handled on the main thread
        return None


if __name__ == "__main__":
    sys.exit(main())
