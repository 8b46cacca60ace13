"""What produced a results folder, so that results of other settings never mix in silently.

``<results_dir>/provenance.json`` records the dataset's identity (SHA-256 of its
``formula, target, split`` content), the profile and the settings that shape results, the
seed, the source model's digest and the tlrl version. A later run into the same folder
must match it; a mismatch is one ``TlrlError`` unless ``force``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from dataclasses import asdict
from pathlib import Path

import pandas as pd

import tlrl
from tlrl.data import dataset_name, load_dataset
from tlrl.errors import TlrlError
from tlrl.io import json_safe, write_json
from tlrl.methods import METHODS
from tlrl.outputs import TASKS
from tlrl.profiles import Profile, get_profile
from tlrl.representation import load_source

FILE = "provenance.json"
# profile fields that change how a run is shown or where it runs, or only the source model, not its results
_NOT_RESULT_SHAPING = {"progress", "checkpoint_every_s", "device", "cuda_graph", "eval_batch_size", "pretrain",
                       "pretrain_continue", "pretrain_rows"}
# profile fields that shape only the learning curve's results (tlrl.curve), recorded for its folders alone
CURVE_FIELDS = {"curve_min_steps", "curve_layers"}


def describe(
    dataset: str | Path | pd.DataFrame,
    profile: str | Profile,
    seed: int = 0,
    source: str | Path | None = None,
    data_dir: str | Path | None = None,
    curve: bool = False,
) -> dict:
    """The provenance record of results made with these settings (``curve``: of a learning curve)."""
    df = dataset if isinstance(dataset, pd.DataFrame) else load_dataset(dataset, data_dir, seed=seed)
    content = df[[c for c in ("formula", "target", "split") if c in df.columns]].to_csv(index=False)
    prof = get_profile(profile)
    src = load_source(source)
    return json_safe({
        "dataset": {"name": dataset_name(dataset), "sha256": hashlib.sha256(content.encode()).hexdigest(),
                    "rows": len(df)},
        "profile": {"name": prof.name, "settings": _result_settings(asdict(prof), set() if curve else CURVE_FIELDS)},
        "seed": seed,
        "source": {"ref": src.ref, "digest": src.digest},
        "tlrl_version": tlrl.__version__,
    })


def check_results_dir(
    results_dir: str | Path,
    dataset: str | Path | pd.DataFrame,
    profile: str | Profile,
    seed: int = 0,
    source: str | Path | None = None,
    data_dir: str | Path | None = None,
    force: bool = False,
    plan: dict | None = None,
) -> dict:
    """Record what produces ``results_dir``, or refuse a folder that holds results of other settings.

    A benchmark folder from before provenance records (runs but no ``provenance.json``) is checked
    against what its runs' metrics name (dataset, profile, seed, source) and then adopted; a curve's
    units or any unfinished fits (``tasks/``) without a record, or an unreadable record, are refused.
    With ``force`` a mismatching or unrecorded folder is started afresh: its ``runs/`` are deleted.
    ``plan``: a learning curve's sizes, seeds and methods, recorded as they are (not compared).
    Returns the record.
    """
    out = Path(results_dir)
    curve = plan is not None
    ours = describe(dataset, profile, seed, source, data_dir, curve) | ({"plan": plan} if curve else {})
    theirs, problem = _recorded(out, curve)
    if problem and not force:
        raise TlrlError(f"{problem}: use --force to start the folder afresh")
    clashes = [problem] if problem else _clashes(theirs, ours) if theirs is not None else _legacy_clashes(out, ours)
    if clashes and not force:
        raise TlrlError(
            f"{out} holds results made with other settings ({'; '.join(clashes)}); use another results folder, "
            "or force (--force) to discard them"
        )
    if clashes:  # only the configurations' (or the curve's sizes') run folders: claim_folder refused anything else
        runs = out / "runs"
        own = [p for p in runs.glob("*") if p.name.isdigit()] if curve else [runs / slug for slug in METHODS]
        for folder in own:
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            (out / "runs").rmdir()  # when nothing else is in it
    write_json(out / FILE, ours)
    return ours


def _recorded(out: Path, curve: bool) -> tuple[dict | None, str | None]:
    """The folder's record (None where it has none) and why its results cannot be checked (None: they can)."""
    path = out / FILE
    if not path.is_file():
        if (out / TASKS).is_dir() and any((out / TASKS).iterdir()):
            return None, f"{out / TASKS} holds unfinished fits but {out} has no {FILE}, so their settings are unknown"
        units = curve and any(not p.name.startswith(".") for p in out.glob("runs/*/*.csv"))
        return None, f"{out} has units but no {FILE}" if units else None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return None, f"{path} is unreadable ({exc.__class__.__name__})"
    if not isinstance(record, dict):
        return None, f"{path} is not a provenance record (a JSON object)"
    return record, None


def read_metrics(path: Path) -> dict:
    """A finished configuration's ``metrics.json``; a broken one names itself and how to rerun it."""
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        metrics, why = None, f"unreadable ({exc.__class__.__name__})"
    else:
        why = "not a JSON object"
    if not isinstance(metrics, dict):
        raise TlrlError(f"{path} is {why}: delete the folder {path.parent} and rerun to redo that configuration")
    return metrics


def _result_settings(settings: dict, ignored: set[str]) -> dict:
    return {k: _result_settings(v, ignored) if isinstance(v, dict) else v
            for k, v in settings.items() if k not in _NOT_RESULT_SHAPING | ignored}


def _flat(d: dict, prefix: str = "") -> dict:
    flat = {}
    for k, v in d.items():
        flat.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return flat


def _clashes(theirs: dict, ours: dict) -> list[str]:
    """'what: X there, Y now' for each recorded setting that differs."""
    clashes = []
    was, now = theirs.get("dataset") or {}, ours["dataset"]
    if was.get("sha256") != now["sha256"]:
        changed = " (same name, other content)" if was.get("name") == now["name"] else ""
        clashes.append(f"dataset {was.get('name')} there, {now['name']} now{changed}")
    was, now = theirs.get("profile") or {}, ours["profile"]
    if was.get("name") != now["name"]:
        clashes.append(f"profile {was.get('name')} there, {now['name']} now")
    else:
        a, b = _flat(was.get("settings") or {}), _flat(now["settings"])
        changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        if changed:
            clashes.append(f"profile {now['name']} with other {', '.join(changed[:5])}")
    if theirs.get("seed") != ours["seed"]:
        clashes.append(f"seed {theirs.get('seed')} there, {ours['seed']} now")
    was, now = theirs.get("source") or {}, ours["source"]
    if was.get("digest") != now["digest"]:
        changed = " (same path, other weights)" if was.get("ref") == now["ref"] else ""
        clashes.append(f"source model {was.get('ref')} there, {now['ref']} now{changed}")
    if theirs.get("tlrl_version") != ours["tlrl_version"]:
        clashes.append(f"tlrl {theirs.get('tlrl_version')} there, {ours['tlrl_version']} now")
    return clashes


def _legacy_clashes(out: Path, ours: dict) -> list[str]:
    """Clashes with what the runs of a folder without a provenance record say about themselves."""
    now = {"dataset": ours["dataset"]["name"], "profile": ours["profile"]["name"], "seed": ours["seed"],
           "source": ours["source"]["ref"]}
    clashes: dict[str, None] = {}
    for path in sorted(out.glob("runs/*/metrics.json")):
        run = read_metrics(path)
        for k in ("dataset", "profile", "seed", "source"):
            if run.get(k) is not None and run[k] != now[k]:
                clashes[f"{k} {run[k]} there, {now[k]} now"] = None
    return list(clashes)
