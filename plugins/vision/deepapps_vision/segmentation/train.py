"""Training a SAM on the ``scenes`` renders with the SAM recipe, on CPU in under an hour.

Each step encodes a batch of images once, then simulates interactive segmentation for a few objects
of each image: a first prompt (a random point inside the object, or its box jittered by up to 10 %
of its sides), then ``clicks`` corrective clicks drawn from the largest error region of the previous
prediction, each round also fed the previous low-resolution logits. Every round is supervised with
focal + dice loss (20:1) on the mask and MSE on the IoU head; a lone point gets three candidate masks
and only the best one is trained (SAM's ambiguity-aware loss). Losses are taken on the decoder's
low-resolution logits against area-downsampled ground truth.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepapps.errors import InputError
from deepapps.resolution import ModelRef

from .arch import PRESETS, SamArch, build_sam
from .data import Sample, check_dataset, load_scene, scene_items
from .prompts import corrective_click

FOCAL_WEIGHT = 20.0
WARMUP_STEPS = 100
VAL_IMAGES = 48


def _input_tensor(samples: list[Sample], arch: SamArch, flips: list[bool]):
    """Resized (long side = img_size), normalised and padded images: B x 3 x S x S; plus each scale."""
    import torch
    import torch.nn.functional as F

    mean = torch.tensor(arch.pixel_mean).view(1, 3, 1, 1)
    std = torch.tensor(arch.pixel_std).view(1, 3, 1, 1)
    out, scales = [], []
    for sample, flip in zip(samples, flips, strict=True):
        h, w = sample.image.shape[:2]
        scale = arch.img_size / max(h, w)
        size = (round(h * scale), round(w * scale))
        image = torch.from_numpy(sample.image.copy()).permute(2, 0, 1)[None].float()
        if flip:
            image = image.flip(-1)
        image = F.interpolate(image, size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 255)
        image = (image - mean) / std
        out.append(F.pad(image, (0, arch.img_size - size[1], 0, arch.img_size - size[0])))
        scales.append(scale)
    return torch.cat(out), scales


def _zoomed(sample: Sample, rng: np.random.Generator, min_pixels: int = 30) -> Sample:
    """A square crop around one random object (its box grown by 30-100 % a side, at least 96-320 px),
    so that the network also learns objects at the larger scales zoom-in shows it (runner.zoom)."""
    h, w = sample.instances.shape
    k = int(rng.integers(1, sample.count + 1))
    x0, y0, x1, y1 = sample.box(k)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * rng.uniform(0.3, 1.0))
    side = int(round(min(max(side, rng.uniform(96, 320)), h, w)))
    cx = (x0 + x1) / 2 + rng.normal(0, 0.1) * side
    cy = (y0 + y1) / 2 + rng.normal(0, 0.1) * side
    left = int(round(min(max(cx - side / 2, 0), w - side)))
    top = int(round(min(max(cy - side / 2, 0), h - side)))
    inst = sample.instances[top : top + side, left : left + side]
    ids, counts = np.unique(inst[inst > 0], return_counts=True)
    keep = ids[counts >= min_pixels]
    relabel = np.zeros(sample.count + 1, dtype=inst.dtype)
    relabel[keep] = np.arange(1, len(keep) + 1)
    classes = [sample.classes[i - 1] for i in keep]
    image = np.ascontiguousarray(sample.image[top : top + side, left : left + side])
    return Sample(f"{sample.name}@{left},{top},{side}", image, relabel[inst], classes)


def _targets(sample: Sample, ids: list[int], arch: SamArch, scale: float, flip: bool):
    """Soft low-resolution targets (K x L x L, the decoder's output grid) for objects ``ids``."""
    import torch
    import torch.nn.functional as F

    inst = sample.instances[:, ::-1] if flip else sample.instances
    masks = torch.from_numpy(np.stack([inst == k for k in ids])).float()[:, None]
    h, w = inst.shape
    ratio = arch.low_res / arch.img_size
    size = (max(1, round(h * scale * ratio)), max(1, round(w * scale * ratio)))
    small = F.interpolate(masks, size, mode="area")[:, 0]
    return F.pad(small, (0, arch.low_res - size[1], 0, arch.low_res - size[0]))


def _first_prompts(
    sample: Sample, ids: list[int], scale: float, flip: bool, use_box: bool, rng: np.random.Generator
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Points (K x 1 x 2) or boxes (K x 4) in input-frame pixels for the first round."""
    inst = sample.instances[:, ::-1] if flip else sample.instances
    points, boxes = [], []
    for k in ids:
        ys, xs = np.nonzero(inst == k)
        if use_box:
            x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1.0, ys.max() + 1.0
            bw, bh = x1 - x0, y1 - y0
            noise = rng.normal(0, 0.1, 4) * np.array([bw, bh, bw, bh])
            noise = np.clip(noise, -20, 20)
            boxes.append((np.array([x0, y0, x1, y1]) + noise) * scale)
        else:
            i = int(rng.integers(len(xs)))
            points.append([[(xs[i] + 0.5) * scale, (ys[i] + 0.5) * scale]])
    if use_box:
        return None, np.asarray(boxes, dtype=np.float32)
    return np.asarray(points, dtype=np.float32), None


def _mask_losses(logits, target):
    """Per-mask focal (gamma 2, no alpha) and dice losses (K x M) of logits K x M x L x L against soft
    targets K x L x L."""
    import torch
    import torch.nn.functional as F

    t = target[:, None].expand_as(logits)
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, t, reduction="none")
    p_t = prob * t + (1 - prob) * (1 - t)
    # No alpha class weight: objects cover 1-8 % of a render, and RetinaNet's alpha = 0.25 (object pixels
    # weighted a third of background ones) kept the first run on empty masks for its first 150 steps.
    focal = (ce * (1 - p_t) ** 2).mean((-1, -2))
    inter = (prob * t).sum((-1, -2))
    dice = 1 - (2 * inter + 1) / (prob.sum((-1, -2)) + t.sum((-1, -2)) + 1)
    return focal, dice


def _iou(pred_logits, target):
    """IoU of each predicted mask (K x M x L x L logits) with its target, the IoU head's label."""
    import torch

    pred = pred_logits > 0
    gt = (target > 0.5)[:, None].expand_as(pred)
    inter = (pred & gt).sum((-1, -2)).float()
    union = (pred | gt).sum((-1, -2)).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def _round_loss(logits, iou_pred, target):
    """(loss, logits of the trained mask K x L x L): best-of-M mask loss plus the IoU head's MSE."""
    import torch

    focal, dice = _mask_losses(logits.float(), target)
    per_mask = FOCAL_WEIGHT * focal + dice
    best = per_mask.argmin(1)
    rows = torch.arange(len(best))
    iou_loss = ((iou_pred.float() - _iou(logits.detach(), target)) ** 2).mean()
    return per_mask[rows, best].mean() + iou_loss, logits[rows, best]


def _next_clicks(logits, target, points, labels, arch: SamArch, rng: np.random.Generator):
    """Each object's points and labels with one corrective click added (input-frame pixels).

    An object whose prediction is already exact gets a padding point (label -1, "not a point").
    """
    pred = (logits.detach() > 0).cpu().numpy()
    gt = (target > 0.5).cpu().numpy()
    step = arch.img_size / arch.low_res
    clicks = []
    for k in range(len(pred)):
        click = corrective_click(pred[k], gt[k], rng)
        clicks.append((click[0] * step, click[1] * step, click[2]) if click is not None else (0.0, 0.0, -1))
    new_points = np.asarray([[c[:2]] for c in clicks], dtype=np.float32)
    new_labels = np.asarray([[c[2]] for c in clicks], dtype=np.int64)
    if points is None:
        return new_points, new_labels
    return np.concatenate([points, new_points], axis=1), np.concatenate([labels, new_labels], axis=1)


def _simulate(
    sam, embedding, image_pe, target, points, boxes, arch: SamArch, clicks: int, rng: np.random.Generator
):
    """Interactive rounds for the objects of one image; returns the summed loss of all rounds."""
    import torch

    labels = None if points is None else np.ones(points.shape[:2], dtype=np.int64)
    box_t = None if boxes is None else torch.from_numpy(boxes).to(sam.device)
    mask_in = None
    total = 0.0
    for r in range(clicks + 1):
        pts = (
            None
            if points is None
            else (torch.from_numpy(points).to(sam.device), torch.from_numpy(labels).to(sam.device))
        )
        sparse, dense = sam.prompt_encoder(points=pts, boxes=box_t, masks=mask_in)
        multimask = r == 0 and boxes is None
        logits, iou_pred = sam.mask_decoder(
            image_embeddings=embedding,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask,
        )
        loss, chosen = _round_loss(logits, iou_pred, target)
        total = total + loss
        if r < clicks:
            points, labels = _next_clicks(chosen, target, points, labels, arch, rng)
            mask_in = chosen.detach()[:, None]
    return total / (clicks + 1)


def _step(
    sam,
    samples: list[Sample],
    arch: SamArch,
    objects: int,
    clicks: int,
    rng: np.random.Generator,
    zoom_crops: float = 0.0,
):
    """The loss of one batch: encode the images once, then simulate prompts on their objects. A share
    ``zoom_crops`` of the images is replaced by a crop around one of their objects (:func:`_zoomed`)."""
    samples = [_zoomed(s, rng) if s.count and rng.random() < zoom_crops else s for s in samples]
    flips = [bool(rng.random() < 0.5) for _ in samples]
    images, scales = _input_tensor(samples, arch, flips)
    embeddings = sam.image_encoder(images.to(sam.device))
    image_pe = sam.prompt_encoder.get_dense_pe()
    losses = []
    for i, sample in enumerate(samples):
        ids = list(rng.permutation(np.arange(1, sample.count + 1))[:objects])
        if not ids:
            continue
        use_box = bool(rng.random() < 0.5)
        points, boxes = _first_prompts(sample, ids, scales[i], flips[i], use_box, rng)
        target = _targets(sample, ids, arch, scales[i], flips[i]).to(sam.device)
        losses.append(
            _simulate(sam, embeddings[i : i + 1], image_pe, target, points, boxes, arch, clicks, rng)
        )
    return sum(losses) / max(len(losses), 1)


def _lr_factor(step: int, steps: int, elapsed: float, budget: float | None) -> tuple[float, float]:
    """(learning-rate factor, progress 0..1): linear warm-up, then cosine to 0 over steps or time."""
    progress = step / steps
    if budget:
        progress = max(progress, elapsed / budget)
    warm = min(1.0, (step + 1) / WARMUP_STEPS)
    return warm * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))), progress


def _start_model(model: ModelRef | None, arch_name: str):
    if model is None:
        arch = PRESETS[arch_name]
        return build_sam(arch), arch
    from .loading import load_sam

    sam, arch, _ = load_sam(model, "cpu")
    return sam, arch


def _validate(sam, arch: SamArch, device: str, val: list[Sample]) -> dict[str, float]:
    """1-click and box mIoU on the first val images (the evaluation protocol, at full resolution)."""
    from .evaluate import score_samples
    from .runner import SegmentationRunner

    sam.eval()
    runner = SegmentationRunner("training", device, "fp32", sam, arch, cache_size=2)
    metrics = score_samples(runner, val, max_clicks=3, iou_target=0.9, progress=False)
    sam.train()
    return {
        "val_miou_1click": metrics["miou_1click"],
        "val_miou_box": metrics["miou_box"],
        "val_miou_3clicks": metrics["miou_3clicks"],
    }


def _load_samples(
    dataset: str, split: str, count: int, seed: int, size: int, progress: bool, limit: int | None = None
) -> list[Sample]:
    from deepapps.runtime.progress import progress as bar

    items = scene_items(dataset, split, count, seed, size, progress=progress)[:limit]
    samples = [load_scene(it) for it in bar(items, desc=f"loading {split}", unit="img", disable=not progress)]
    return [s for s in samples if s.count > 0]


def train(
    model: ModelRef | None,
    dataset: str | None,
    out_dir: Path,
    device: str,
    precision: str,
    arch: str,
    steps: int,
    minutes: float | None,
    batch: int,
    objects: int,
    clicks: int,
    zoom_crops: float,
    trainable: str,
    lr: float,
    seed: int,
    val_every: int,
    scene_count: int,
    scene_seed: int,
    scene_size: int,
    progress: bool,
) -> dict[str, Any]:
    """Train (or fine-tune ``model``) on scenes; writes model.safetensors, metrics.jsonl and metrics.png."""

    from deepapps.runtime.seeding import seed_everything
    from deepapps.runtime.threads import set_threads

    name = check_dataset(dataset)
    if name == "coins":
        raise InputError("coins is a single evaluation photo; train on scenes (or a scenes data.yaml folder)")
    seed_everything(seed)
    threads = set_threads()
    rng = np.random.default_rng(seed)
    train_set = _load_samples(name, "train", scene_count, scene_seed, scene_size, progress)
    val_set = _load_samples(name, "val", scene_count, scene_seed, scene_size, False, limit=VAL_IMAGES)
    if not train_set or not val_set:
        raise InputError(
            f"dataset {name!r} needs train and val images with objects; render more scenes (--scene-count)"
        )
    sam, sam_arch = _start_model(model, arch)
    sam.to(device).train()
    setup = {
        "arch": sam_arch.to_dict(),
        "dataset": name,
        "scene_count": scene_count,
        "scene_seed": scene_seed,
        "scene_size": scene_size,
        "batch": batch,
        "objects": objects,
        "clicks": clicks,
        "zoom_crops": zoom_crops,
        "trainable": trainable,
        "lr": lr,
        "seed": seed,
        "threads": threads,
        "device": device,
    }
    return _fit(
        sam,
        sam_arch,
        train_set,
        val_set,
        Path(out_dir),
        device,
        precision,
        setup,
        steps,
        minutes,
        val_every,
        progress,
        rng,
    )


class _Recorder:
    """Validation rows (metrics.jsonl and the plot) and the last and best checkpoints of one run."""

    def __init__(
        self, out_dir: Path, arch: SamArch, setup: dict[str, Any], device: str, val_set: list[Sample]
    ):
        from deepapps.runtime.training import MetricsLog

        self.out_dir, self.arch, self.setup, self.device, self.val_set = out_dir, arch, setup, device, val_set
        self.log = MetricsLog(out_dir)
        self.meta = {"format": "deepapps-sam-v1", "arch": arch.to_dict(), "training": setup}
        self.best = -1.0
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()

    def record(self, sam, step: int, running: list[float], lr: float) -> None:
        """Validate, log a row, save ``last`` and (when validation improved) ``model`` checkpoints."""
        from deepapps.runtime.checkpoint import save_checkpoint

        row = {
            "step": step,
            "loss": round(float(np.mean(running)), 5) if running else None,
            "lr": lr,
            "minutes": round((time.perf_counter() - self.t0) / 60, 2),
            "cpu_minutes": round((time.process_time() - self.cpu0) / 60, 2),
        }
        row.update({k: round(v, 4) for k, v in _validate(sam, self.arch, self.device, self.val_set).items()})
        self.log.log(**row)
        meta = {**self.meta, "metrics": row}
        save_checkpoint(self.out_dir / "last.safetensors", sam.state_dict(), meta)
        score = row["val_miou_1click"] + row["val_miou_box"]
        if score > self.best:
            self.best = score
            save_checkpoint(self.out_dir / "model.safetensors", sam.state_dict(), meta)

    def summary(self, sam, step: int) -> dict[str, Any]:
        plot = self.log.plot(x="step", title=f"SAM ({self.arch.name}) on {self.setup['dataset']}")
        return {
            "task": "segmentation",
            "steps": step,
            "seconds": round(time.perf_counter() - self.t0, 1),
            "cpu_seconds": round(time.process_time() - self.cpu0, 1),
            "last": self.log.rows[-1],
            "checkpoint": str(self.out_dir / "model.safetensors"),
            "plot": str(plot) if plot else None,
            "params": sum(p.numel() for p in sam.parameters()),
        }


def _trainable(sam, which: str) -> list:
    """The parameters ``--trainable`` lets training change; the others get no gradient (so autograd keeps no
    graph through a frozen image encoder)."""
    parts = {
        "all": (sam,),
        "decoder": (sam.prompt_encoder, sam.mask_decoder),
        # the IoU token also steers the masks through the decoder's attention, so only the head's MLP moves
        "iou-head": (sam.mask_decoder.iou_prediction_head,),
    }
    if which not in parts:
        raise InputError(f"--trainable must be one of {', '.join(parts)}, not {which!r}")
    sam.requires_grad_(False)
    for part in parts[which]:
        part.requires_grad_(True)
    return [p for p in sam.parameters() if p.requires_grad]


def _fit(
    sam,
    arch: SamArch,
    train_set: list[Sample],
    val_set: list[Sample],
    out_dir: Path,
    device: str,
    precision: str,
    setup: dict[str, Any],
    steps: int,
    minutes: float | None,
    val_every: int,
    progress: bool,
    rng: np.random.Generator,
) -> dict[str, Any]:
    """The optimisation loop: AdamW, warm-up then cosine (over steps or minutes), validation rounds."""
    import torch

    from deepapps.runtime.precision import autocast
    from deepapps.runtime.progress import progress as bar

    params = _trainable(sam, setup["trainable"])
    opt = torch.optim.AdamW(params, lr=setup["lr"], weight_decay=0.05)
    recorder = _Recorder(out_dir, arch, setup, device, val_set)
    budget = minutes * 60 if minutes else None
    running: list[float] = []
    step, lr = 0, setup["lr"]
    pbar = bar(total=steps, desc="training sam", unit="step", disable=not progress)
    while step < steps:
        factor, done = _lr_factor(step, steps, time.perf_counter() - recorder.t0, budget)
        if done >= 1.0:
            break
        lr = setup["lr"] * factor
        for group in opt.param_groups:
            group["lr"] = lr
        picks = rng.choice(len(train_set), size=min(setup["batch"], len(train_set)), replace=False)
        with autocast(device, precision):
            batch = [train_set[i] for i in picks]
            loss = _step(sam, batch, arch, setup["objects"], setup["clicks"], rng, setup["zoom_crops"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        running.append(float(loss.detach()))
        step += 1
        pbar.update(1)
        pbar.set_postfix(loss=f"{np.mean(running[-50:]):.4f}")
        if step % val_every == 0:
            recorder.record(sam, step, running, lr)
            running = []
    pbar.close()
    if not recorder.log.rows or recorder.log.rows[-1]["step"] != step:
        recorder.record(sam, step, running, lr)
    return recorder.summary(sam, step)
