"""``deepapps train structure-prediction``: the bundled model from the training chains of pdb-chains.

Training chains: the split's (or the other folds') pdb-chains chains plus, unless ``--no-extra``,
the extra chains of :mod:`deepapps_protein.extra_chains` (none over 30% identical to any
pdb-chains chain, so they can join every split and fold).

One step = one training chain: the 1D trunk sees the whole chain, the 2D trunk a random
``crop`` x ``crop`` block of its pair map (two windows, so long-range pairs are seen too).
Loss = cross-entropy of the 3 SS states + cross-entropy of the 12 distance bins (pairs |i-j| >= 2).
The number of epochs is fixed (no checkpoint is picked on held-out data); the validation chains
are used once, after training, to calibrate the confidence head (confidence.py): each is folded,
its per-residue lDDT-Cα against the true structure measured, and a least-squares line from the
confidence signals followed by an isotonic map fitted to it (``--recalibrate`` below refits the
head of a saved checkpoint the same way). With ``fold=k`` it trains on the other four cross-validation folds and
reports on fold k instead (the 5-fold cross-validated figures).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .data import load_chain, load_pdb_chains, split_ids, train_ids_for_fold
from .features import MIN_PAIR_SEPARATION, contact_probability, distance_bins, residue_features, ss_targets
from .fold import fold
from .metrics import contact_precision, lddt_per_residue, q3

MODEL_NAME = "protein-fold-small"
TRAIN_EPOCHS, TRAIN_LR, TRAIN_SEED, TRAIN_CROP, TRAIN_THREADS = 15, 1e-3, 0, 56, 1
COMMAND = "deepapps train structure-prediction --out runs/protein"


def _tensors(chain) -> dict[str, Any]:
    import torch

    return {
        "feats": torch.from_numpy(residue_features(chain.sequence)).T[None],
        "ss": torch.from_numpy(ss_targets(chain.ss)),
        "bins": torch.from_numpy(distance_bins(chain.ca)),
    }


def _crop(length: int, crop: int, rng: np.random.Generator):
    import torch

    size = min(crop, length)
    starts = rng.integers(0, length - size + 1, size=2)
    return torch.arange(starts[0], starts[0] + size), torch.arange(starts[1], starts[1] + size)


def _loss(net, item: dict, crop: int, rng: np.random.Generator, pair: bool):
    import torch.nn.functional as F

    rows, cols = _crop(item["feats"].shape[-1], crop, rng)
    ss_logits, dist_logits = net(item["feats"], rows, cols)
    loss = F.cross_entropy(ss_logits[0].T, item["ss"])
    if pair:
        target = item["bins"][rows][:, cols]
        keep = (rows[:, None] - cols[None, :]).abs() >= MIN_PAIR_SEPARATION
        per_pair = F.cross_entropy(dist_logits, target[None], reduction="none")[0]
        loss = loss + (per_pair * keep).sum() / keep.sum().clamp(min=1)
    return loss


def evaluate_network(net, chains) -> dict[str, float]:
    """Q3 and long-range top-L/5 contact precision of the raw network outputs (no folding)."""
    import torch

    net.eval()
    right = total = 0
    precisions = []
    with torch.inference_mode():
        for c in chains:
            ss, dist = net.predict(torch.from_numpy(residue_features(c.sequence)).T[None])
            pred = "".join("HE-"[k] for k in ss.argmax(1).tolist())
            right += round(q3(pred, c.ss) * len(c.ss))
            total += len(c.ss)
            p = contact_precision(contact_probability(dist.numpy()), c.ca)
            if not np.isnan(p):
                precisions.append(p)
    net.train()
    return {
        "q3": right / total,
        "contact_precision_long_l5": float(np.mean(precisions)) if precisions else 0.0,
    }


def held_out_signals(net, chains, refine_steps: int) -> tuple[list[dict], list[np.ndarray]]:
    """Each chain folded by the model: its per-residue confidence signals and true lDDT-Cα."""
    from .small_model import SmallFoldModel

    model = SmallFoldModel(net, None, {})
    signals, truth = [], []
    for c in chains:
        ss_probs, dist_probs = model.network_outputs(c.sequence)
        out = fold(ss_probs, dist_probs, steps=refine_steps)
        signals.append(out.signals)
        truth.append(lddt_per_residue(out.ca, c.ca))
    net.train()
    return signals, truth


def leave_one_chain_out_pearson(signals: list[dict], truth: list[np.ndarray], names) -> float:
    """Pearson r of confidence vs lDDT when each chain's calibration is fitted on the other chains."""
    from .confidence import apply_calibration, feature_matrix, fit_calibration

    preds = []
    for k in range(len(signals)):
        rest = [i for i in range(len(signals)) if i != k]
        x = np.vstack([feature_matrix(signals[i], names) for i in rest])
        fitted = fit_calibration(x, np.concatenate([truth[i] for i in rest]))
        preds.append(apply_calibration(feature_matrix(signals[k], names), *fitted))
    return float(np.corrcoef(np.concatenate(preds), np.concatenate(truth))[0, 1])


def calibrate_confidence(net, chains, refine_steps: int, names=None) -> tuple[Any, dict[str, float]]:
    """The confidence head fitted on ``chains`` (the val chains): least squares, then isotonic."""
    from .confidence import FEATURES, apply_calibration, feature_matrix, fit_calibration
    from .small_model import Calibration

    names = tuple(names or FEATURES)
    signals, truth = held_out_signals(net, chains, refine_steps)
    x = np.vstack([feature_matrix(s, names) for s in signals])
    y = np.concatenate(truth)
    fitted = fit_calibration(x, y)
    pred = apply_calibration(x, *fitted) / 100.0
    return Calibration(fitted[0], names, fitted[1], fitted[2]), {
        "calibration_residues": len(y),
        "calibration_mae": float(np.abs(pred - y).mean()),
        "calibration_pearson": float(np.corrcoef(pred, y)[0, 1]) if len(y) > 2 else 0.0,
        "calibration_pearson_leave_one_chain_out": leave_one_chain_out_pearson(signals, truth, names)
        if len(chains) > 2
        else 0.0,
        "calibration_knots": len(fitted[1]),
    }


def _chains(fold_index: int | None, extra: bool) -> tuple[list, list, str]:
    """Training chains, held-out chains and the held-out set's name. The extra chains (no more
    than 30% identical to any pdb-chains chain) join the training side of every split and fold."""
    from .extra_chains import load_extra_chains

    extras = load_extra_chains() if extra else []
    if fold_index is None:
        train_ids, held_ids, held_name = split_ids("train"), split_ids("val"), "val"
    else:
        train_ids, held_ids = train_ids_for_fold(fold_index), split_ids(f"fold-{fold_index}")
        held_name = f"fold-{fold_index}"
    return [load_chain(i) for i in train_ids] + extras, [load_chain(i) for i in held_ids], held_name


def train(
    model,
    dataset: str | None,
    out_dir: Path,
    device: str,
    precision: str,
    epochs: int,
    lr: float,
    seed: int,
    crop: int,
    fold: int | None,
    pair: bool,
    threads: int,
    extra: bool = True,
) -> dict:
    """Train, calibrate and save ``protein-fold-small`` (see the module docstring)."""
    import torch

    from deepapps.runtime import progress, seed_everything, set_threads

    from .net import FoldNet

    if dataset not in (None, "pdb-chains"):
        from deepapps import InputError

        raise InputError(f"structure-prediction trains on the pdb-chains dataset only, not {dataset!r}")
    seed_everything(seed)
    threads = set_threads(threads)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_chains, held_chains, held_name = _chains(fold, extra)
    items = [_tensors(c) for c in train_chains]
    net = FoldNet().to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * len(items), pct_start=0.1
    )
    rng = np.random.default_rng(seed)
    log = out_dir / "metrics.jsonl"
    log.write_text("")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    history = []
    for epoch in progress(
        range(1, epochs + 1), total=epochs, desc="train structure-prediction", unit="epoch"
    ):
        losses = []
        for k in rng.permutation(len(items)):
            loss = _loss(net, {key: v.to(device) for key, v in items[k].items()}, crop, rng, pair)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
        row = {"epoch": epoch, "loss": float(np.mean(losses))}
        if epoch % 5 == 0 or epoch == epochs:
            row.update({f"{held_name}_{k}": v for k, v in evaluate_network(net.cpu(), held_chains).items()})
            net.to(device)
        history.append(row)
        with log.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
    return _finish(
        net.cpu(),
        out_dir,
        history,
        held_chains,
        held_name,
        fold,
        pair,
        {
            "train_chains": len(train_chains),
            "train_residues": sum(len(c) for c in train_chains),
            "extra_chains": extra,
            "epochs": epochs,
            "lr": lr,
            "seed": seed,
            "crop": crop,
            "threads": threads,
            "cpu_seconds": time.process_time() - cpu0,
            "wall_seconds": time.perf_counter() - wall0,
        },
    )


def _finish(
    net,
    out_dir: Path,
    history: list,
    held_chains: list,
    held_name: str,
    fold_index: int | None,
    pair: bool,
    record: dict,
) -> dict:
    from .fold import REFINE_STEPS
    from .small_model import save_model

    final = evaluate_network(net, held_chains)
    summary: dict[str, Any] = {
        "task": "structure-prediction",
        "model": MODEL_NAME,
        "held_out": held_name,
        **{f"{held_name}_{k}": round(v, 4) for k, v in final.items()},
        **record,
    }
    if fold_index is None and pair:
        calibration, calib = calibrate_confidence(net, held_chains, REFINE_STEPS)
        summary.update({k: round(v, 4) if isinstance(v, float) else v for k, v in calib.items()})
        path = save_model(
            out_dir / f"{MODEL_NAME}.safetensors",
            net,
            calibration,
            {"training": {k: v for k, v in summary.items() if k != "checkpoint"}, "command": COMMAND},
        )
        summary["checkpoint"] = str(path)
    summary["cpu_seconds"] = round(summary["cpu_seconds"], 1)
    summary["wall_seconds"] = round(summary["wall_seconds"], 1)
    _plot(history, out_dir / "training.png", held_name)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _plot(history: list, path: Path, held_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot([r["epoch"] for r in history], [r["loss"] for r in history])
    ax[0].set(xlabel="epoch", ylabel="training loss")
    marks = [r for r in history if f"{held_name}_q3" in r]
    for key in ("q3", "contact_precision_long_l5"):
        ax[1].plot(
            [r["epoch"] for r in marks], [r[f"{held_name}_{key}"] for r in marks], marker="o", label=key
        )
    ax[1].set(xlabel="epoch", title=f"on {held_name}")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def recalibrate(path: str | Path, threads: int = TRAIN_THREADS) -> dict:
    """Refit the confidence head of a saved checkpoint on the val chains, in place (the network is
    unchanged): what ``deepapps train structure-prediction`` does after training, for a checkpoint
    trained before the current confidence head."""
    from deepapps.runtime import set_threads

    from .fold import REFINE_STEPS
    from .small_model import load_model, save_model

    set_threads(threads)
    model = load_model(path)
    calibration, calib = calibrate_confidence(model.net, load_pdb_chains("val"), REFINE_STEPS)
    meta = {k: v for k, v in model.metadata.items() if k not in ("format", "config", "confidence_features")}
    training = dict(meta.get("training", {}))
    training.update({k: round(v, 4) if isinstance(v, float) else v for k, v in calib.items()})
    meta["training"] = training
    save_model(path, model.net.cpu(), calibration, meta)
    return calib


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="Refit a protein-fold-small checkpoint's confidence head on val."
    )
    parser.add_argument("--recalibrate", required=True, metavar="CHECKPOINT")
    print(json.dumps(recalibrate(parser.parse_args().recalibrate), indent=2))
