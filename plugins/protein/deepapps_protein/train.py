"""``deepapps train structure-prediction``: the bundled model from the training chains of pdb-chains.

Training chains: the split's (or the other folds') pdb-chains chains plus, unless ``--no-extra``,
the extra chains of :mod:`deepapps_protein.extra_chains` (none over 30% identical to any
pdb-chains chain, so they can join every split and fold).

One step = one training chain: the 1D trunk sees the whole chain, the 2D trunk a random
``crop`` x ``crop`` block of its pair map (two windows, so long-range pairs are seen too).
Loss = cross-entropy of the 3 SS states + cross-entropy of the 12 distance bins (pairs |i-j| >= 2).
The number of epochs is fixed (no checkpoint is picked on held-out data); the validation chains
are used once, after training, to calibrate the confidence head: each is folded, its per-residue
lDDT-Cα against the true structure measured, and a least-squares line fitted from the
confidence features to it. With ``fold=k`` it trains on the other four cross-validation folds and
reports on fold k instead (the 5-fold cross-validated figures).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .data import load_chain, split_ids, train_ids_for_fold
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


def calibrate_confidence(net, chains, refine_steps: int) -> tuple[np.ndarray, dict[str, float]]:
    """Least-squares weights from confidence features to per-residue lDDT-Cα on ``chains``."""
    from .small_model import SmallFoldModel

    model = SmallFoldModel(net, np.zeros(6), {})
    xs, ys, tms = [], [], []
    for c in chains:
        ss_probs, dist_probs = model.network_outputs(c.sequence)
        out = fold(ss_probs, dist_probs, steps=refine_steps)
        xs.append(out.confidence_features)
        ys.append(lddt_per_residue(out.ca, c.ca))
    x, y = np.vstack(xs), np.concatenate(ys)
    weights, *_ = np.linalg.lstsq(x, y, rcond=None)
    pred = np.clip(x @ weights, 0, 1)
    net.train()
    return weights, {
        "calibration_residues": len(y),
        "calibration_mae": float(np.abs(pred - y).mean()),
        "calibration_pearson": float(np.corrcoef(pred, y)[0, 1]) if len(y) > 2 else 0.0,
        **({"val_tm_mean": float(np.mean(tms))} if tms else {}),
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
        weights, calib = calibrate_confidence(net, held_chains, REFINE_STEPS)
        summary.update({k: round(v, 4) if isinstance(v, float) else v for k, v in calib.items()})
        path = save_model(
            out_dir / f"{MODEL_NAME}.safetensors",
            net,
            weights,
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
