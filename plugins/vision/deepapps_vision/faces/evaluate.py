"""``deepapps eval face-recognition`` and ``deepapps bench face-recognition``.

Evaluation (offline data only, nothing here is trained, so all of it is held out):
- detection recall and false-positive rate on scikit-image's ``lfw_subset`` (100 LFW face crops,
  100 non-face patches, 25x25, upsampled to ``size`` pixels) for the HOG and the CNN detector;
- verification robustness: each face (the astronaut photo and the 100 LFW crops) under a flip,
  a crop, brightness changes and JPEG compression must stay under the threshold from its
  original, and different faces over it; a ROC over every pair (genuine = two versions of one
  photo, impostor = originals of two different photos) gives TAR at fixed FAR. This is a
  robustness check, not LFW's protocol (no identity-labelled faces ship offline); dlib's
  published LFW accuracy is quoted in the model card.

Bench: exact 1:N search latency over 10,000 enrolled embeddings with recall@1 against brute
force, and end-to-end video frames per second at 640x480 with one face (HOG).
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from deepapps import BenchReport, EvalReport, InputError, ModelRef

from .data import upsample_gray
from .specs import DEFAULTS, TASK


def _runner(model: ModelRef, device: str, precision: str):
    """The task's runner for ``model``, shared with everything else in this process."""
    import deepapps

    return deepapps.load(TASK, model, device=device, precision=precision)


# detection -------------------------------------------------------------------------------
def detection_scores(
    detector: str, images: np.ndarray, size: int, upsample: int, progress: bool = True
) -> list[float]:
    """The best detection score per image (``-inf`` when nothing was found at any score)."""
    from deepapps.runtime.progress import progress as bar

    from .models import cnn_detector, hog_detector

    best = []
    det = hog_detector() if detector == "hog" else cnn_detector()
    for img in bar(images, desc=f"detect {detector}", unit="img", disable=not progress):
        rgb = upsample_gray(img, size)
        if detector == "hog":
            _, scores, _ = det.run(rgb, upsample, -0.5)
            scores = list(scores)
        else:
            scores = [d.confidence for d in det(rgb, upsample)]
        best.append(max(scores) if scores else float("-inf"))
    return best


def _rates(best: list[float], labels: np.ndarray, threshold: float) -> dict[str, float]:
    found = np.asarray(best) >= threshold
    return {
        "recall": round(float(found[labels == 1].mean()), 4),
        "fpr": round(float(found[labels == 0].mean()), 4),
    }


# verification ------------------------------------------------------------------------------
def augmentations(rgb: np.ndarray) -> dict[str, np.ndarray]:
    """Versions of one photo that must stay the same person: flip, crop, brightness, JPEG."""
    import cv2
    from PIL import Image

    h, w = rgb.shape[:2]
    m = max(1, round(0.06 * min(h, w)))
    crop = cv2.resize(rgb[m : h - m // 2, m // 2 : w - m], (w, h), interpolation=cv2.INTER_LINEAR)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=30)
    jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return {
        "flip": np.ascontiguousarray(rgb[:, ::-1]),
        "crop": np.ascontiguousarray(crop),
        "brighter": np.clip(rgb.astype(np.float32) * 1.35, 0, 255).astype(np.uint8),
        "darker": np.clip(rgb.astype(np.float32) * 0.6, 0, 255).astype(np.uint8),
        "jpeg30": np.ascontiguousarray(jpeg),
    }


def roc(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, Any]:
    """TAR at fixed FARs, EER and AUC for distance scores (smaller = more alike)."""
    genuine = np.sort(np.asarray(genuine, np.float64))
    impostor = np.sort(np.asarray(impostor, np.float64))
    out: dict[str, Any] = {}
    for far in (1e-3, 1e-2, 1e-1):
        k = int(np.floor(far * len(impostor)))  # at most k impostors accepted
        thr = impostor[k] if k < len(impostor) else np.inf  # accept distance < thr
        out[f"tar_at_far_{far:g}"] = round(float((genuine < thr).mean()), 4)
        out[f"threshold_at_far_{far:g}"] = round(float(thr), 4)
    thresholds = np.unique(np.r_[genuine, impostor])
    tar = np.searchsorted(genuine, thresholds, side="left") / len(genuine)
    far_ = np.searchsorted(impostor, thresholds, side="left") / len(impostor)
    i = int(np.argmin(np.abs((1 - tar) - far_)))
    out["eer"] = round(float(((1 - tar[i]) + far_[i]) / 2), 4)
    # AUC = P(genuine distance < impostor distance)
    ranks = np.searchsorted(impostor, genuine, side="right")
    out["auc"] = round(float((len(impostor) - ranks).sum() / (len(genuine) * len(impostor))), 5)
    return out


def _embed_versions(recognizer, faces: list[np.ndarray], names: list[str], progress: bool):
    """Per photo with a face: {version: embedding} for the original and its augmentations."""
    from deepapps.runtime.progress import progress as bar

    groups: list[dict[str, np.ndarray]] = []
    kept: list[str] = []
    counts = {"photos_without_face": 0, "augmented_without_face": 0}
    photos = bar(faces, desc="verify robustness", unit="photo", disable=not progress)
    for name, rgb in zip(names, photos, strict=False):
        found = recognizer.embed(rgb)
        if not found:
            counts["photos_without_face"] += 1
            continue
        vecs = {"original": found[0].embedding}
        for aug, img in augmentations(rgb).items():
            f = recognizer.embed(img)
            if f:
                vecs[aug] = f[0].embedding
            else:
                counts["augmented_without_face"] += 1
        groups.append(vecs)
        kept.append(name)
    return groups, kept, counts


def _pair_distances(groups: list[dict[str, np.ndarray]]):
    """Genuine distances (versions of one photo), per augmentation from its original, and the
    impostor distances between originals with their index pairs."""
    per_aug: dict[str, list[float]] = {}
    genuine = []
    for g in groups:
        keys = list(g)
        for a in range(len(keys)):
            for b in range(a + 1, len(keys)):
                d = float(np.linalg.norm(g[keys[a]] - g[keys[b]]))
                genuine.append(d)
                if keys[a] == "original":
                    per_aug.setdefault(keys[b], []).append(d)
    originals = np.stack([g["original"] for g in groups])
    diff = np.linalg.norm(originals[:, None, :] - originals[None, :, :], axis=2)
    iu = np.triu_indices(len(originals), 1)
    return np.asarray(genuine), per_aug, diff[iu], iu


def verification_check(recognizer, faces: list[np.ndarray], names: list[str], progress: bool = True) -> dict:
    """Embed each photo and its augmentations; robustness rates + ROC (see module docstring)."""
    thr = recognizer.threshold
    groups, kept, counts = _embed_versions(recognizer, faces, names, progress)
    genuine, per_aug, impostor, iu = _pair_distances(groups)
    out: dict[str, Any] = {
        "photos": len(faces),
        **counts,
        "genuine_pairs": len(genuine),
        "impostor_pairs": int(len(impostor)),
        "same_under_threshold": round(float((genuine < thr).mean()), 4),
        "different_over_threshold": round(float((impostor >= thr).mean()), 4),
        "impostor_pairs_under_threshold": int((impostor < thr).sum()),
        "genuine_distance_max": round(float(np.max(genuine)), 4),
        "genuine_distance_mean": round(float(np.mean(genuine)), 4),
        "impostor_distance_min": round(float(np.min(impostor)), 4),
        "impostor_distance_mean": round(float(np.mean(impostor)), 4),
        "per_augmentation_max_distance": {k: round(float(max(v)), 4) for k, v in per_aug.items()},
        "per_augmentation_pass_rate": {
            k: round(float((np.asarray(v) < thr).mean()), 4) for k, v in per_aug.items()
        },
    }
    out.update(roc(genuine, impostor))
    # the closest impostor pairs, for a human to check (LFW may hold two photos of one person)
    order = np.argsort(impostor)[:5]
    out["closest_impostor_pairs"] = [
        (kept[iu[0][i]], kept[iu[1][i]], round(float(impostor[i]), 4)) for i in order
    ]
    return out


def _detection_metrics(detectors: list[str], images: np.ndarray, labels: np.ndarray, size: int,
                       progress: bool) -> dict[str, float]:  # fmt: skip
    """Recall and false-positive rate per detector (HOG at two score cuts)."""
    metrics: dict[str, float] = {}
    for det in detectors:
        best = detection_scores(det, images, size, upsample=1, progress=progress)
        if det == "hog":
            for thr in (0.0, 0.3):
                r = _rates(best, labels, thr)
                metrics[f"hog_recall@score{thr}"] = r["recall"]
                metrics[f"hog_fpr@score{thr}"] = r["fpr"]
        else:
            r = _rates(best, labels, 0.0)
            metrics["cnn_recall"] = r["recall"]
            metrics["cnn_fpr"] = r["fpr"]
    return metrics


def _load_faces_dataset(dataset: str | None, split: str, limit: int | None):
    """(images, labels) of the registered dataset, the first ``limit`` faces and non-faces."""
    import deepapps

    name = dataset or "lfw-subset"
    spec = deepapps.registry.task(TASK)
    if name not in {d.name for d in deepapps.registry.datasets(TASK)}:
        raise InputError(f"{TASK} evaluates on a registered dataset ({spec.default_dataset}), not {name!r}")
    ds = deepapps.load_dataset(name, split)
    images, labels = ds["images"], ds["labels"]
    if limit:
        faces, others = np.flatnonzero(labels == 1)[:limit], np.flatnonzero(labels == 0)[:limit]
        keep = np.r_[faces, others]
        images, labels = images[keep], labels[keep]
    return name, images, labels


def evaluate(
    model: ModelRef,
    dataset: str | None,
    split: str,
    limit: int | None,
    device: str,
    precision: str,
    size: int = DEFAULTS["size"],
    detectors: list[str] | tuple[str, ...] = DEFAULTS["detectors"],
    progress: bool = DEFAULTS["progress"],
) -> EvalReport:
    """Detection recall/FPR (HOG, CNN) and verification robustness with a ROC; see the module docstring."""
    from skimage import data as skdata

    t0 = time.perf_counter()
    name, images, labels = _load_faces_dataset(dataset, split, limit)
    metrics: dict[str, Any] = _detection_metrics(list(detectors), images, labels, size, progress)
    # every HOG detection counts here (min_score 0): a blurry upsampled crop scores low
    rec = _runner(model, device, precision).recognizer_for(min_score=0.0)
    faces = [skdata.astronaut()] + [
        upsample_gray(im, 150) for im, lab in zip(images, labels, strict=True) if lab == 1
    ]
    names = ["astronaut"] + [f"lfw{i}" for i in range(len(faces) - 1)]
    v = verification_check(rec, faces, names, progress=progress)
    closest = v.pop("closest_impostor_pairs")
    metrics.update({f"verify_{k}": val for k, val in v.items()})
    extra = {
        "image_size": f"25x25 upsampled to {size}x{size} (bicubic), detector upsample 1",
        "closest_impostor_pairs": closest,
        "threshold": rec.threshold,
        "published": "dlib_face_recognition_resnet_model_v1: 99.38% LFW accuracy (published by dlib, "
        "not re-measured)",
    }
    return EvalReport(task=TASK, model=model.name, dataset=name, split=split, n=int(len(images)),
                      metrics=metrics, seconds=time.perf_counter() - t0, extra=extra)  # fmt: skip


# bench -------------------------------------------------------------------------------------
def make_face_video(
    path: str | Path, frames: int = 60, size: tuple[int, int] = (640, 480), fps: float = 25.0
) -> Path:
    """A synthetic clip: the astronaut's face (about 120 px) gliding across a grey frame."""
    import cv2
    from skimage import data as skdata

    w, h = size
    face = cv2.resize(skdata.astronaut()[20:320, 90:390], (300, 300), interpolation=cv2.INTER_LINEAR)[
        :, :, ::-1
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for i in range(frames):
        frame = np.full((h, w, 3), 120, np.uint8)
        x = int((w - 300) * (0.5 + 0.5 * np.sin(i / 15.0)))
        y = (h - 300) // 2
        frame[y : y + 300, x : x + 300] = face
        writer.write(frame)
    writer.release()
    return path


def synthetic_embeddings(n: int, dim: int = 128, seed: int = 0) -> np.ndarray:
    """Random vectors spread like dlib descriptors (norm about 1, typical pair distance about 0.9)."""
    rng = np.random.default_rng(seed)
    v = rng.normal(0.0, 1.0, (n, dim)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return (v * 0.65).astype(np.float32)


def brute_force_top1(mat: np.ndarray, index: np.ndarray, names: list[str], q: np.ndarray) -> str:
    dist = np.sqrt(((mat.astype(np.float64) - q.astype(np.float64)) ** 2).sum(1))
    best: dict[int, float] = {}
    for i, d in zip(index.tolist(), dist.tolist(), strict=True):
        if d < best.get(i, np.inf):
            best[i] = d
    return names[min(best, key=best.get)]


def bench(
    model: ModelRef,
    device: str,
    precision: str,
    identities: int = DEFAULTS["identities"],
    queries: int = DEFAULTS["queries"],
    video_frames: int = DEFAULTS["video_frames"],
    progress: bool = DEFAULTS["progress"],
) -> BenchReport:
    """Search p50/p95 and recall@1 at ``identities`` entries; video fps at 640x480 with one face."""
    import os

    from .gallery import Gallery

    t0 = time.perf_counter()
    report = BenchReport(task=TASK, model=model.name, figures={}, seconds=0.0)
    rec = _runner(model, device, precision).recognizer_for()
    with tempfile.TemporaryDirectory(prefix="deepapps-faces-bench-") as tmp:
        with Gallery(Path(tmp) / "bench.db", recognizer=rec) as g:
            vecs = _bench_insert(report, g, identities)
            _bench_search(report, g, vecs, queries)
            _bench_photo_search(report, g)
            _bench_video(report, rec, g, Path(tmp), video_frames, progress)
    report.setup = {"cpu_count": os.cpu_count(), "identities": identities, "dim": int(vecs.shape[1])}
    report.seconds = time.perf_counter() - t0
    return report


def _bench_insert(report: BenchReport, g, identities: int, batch: int = 1000) -> np.ndarray:
    """Enroll ``identities`` synthetic embeddings (and the astronaut); the insert rate."""
    from skimage import data as skdata

    vecs = synthetic_embeddings(identities, g.recognizer.embedder.dim)
    t = time.perf_counter()
    for s in range(0, identities, batch):
        rows = [
            (f"person-{i:05d}", vecs[i], f"synthetic-{i}", "", [])
            for i in range(s, min(identities, s + batch))
        ]
        g.add_embeddings(rows)
    insert_s = time.perf_counter() - t
    astro = g.recognizer.embed(skdata.astronaut())[0]
    g.add_embedding("astronaut", astro.embedding, "astronaut", "")
    report.add(
        "gallery_insert_rate", round(identities / insert_s, 1), "rows/s", how=f"{batch} rows per transaction"
    )
    return vecs


def _bench_search(report: BenchReport, g, vecs: np.ndarray, queries: int) -> None:
    """Latency (wall and CPU) of noisy queries near enrolled vectors, and agreement with brute force."""
    identities = len(vecs)
    rng = np.random.default_rng(1)
    picks = rng.integers(0, identities, queries)
    qs = vecs[picks] + rng.normal(0, 0.02, (queries, vecs.shape[1])).astype(np.float32)
    g.search_embedding(qs[0], 5)  # load the matrix once (cached until the gallery changes)
    mat, index, names = g.matrix()
    lat, cpu, hits, agree = [], [], 0, 0
    for q, p in zip(qs, picks, strict=True):
        s, c = time.perf_counter(), time.thread_time()
        m = g.search_embedding(q, 5)
        cpu.append((time.thread_time() - c) * 1e3)
        lat.append((time.perf_counter() - s) * 1e3)
        hits += m[0].name == f"person-{p:05d}"
        agree += m[0].name == brute_force_top1(mat, index, names, q)
    n_rows = g.count_embeddings()
    report.add("search_p50", round(float(np.percentile(lat, 50)), 3), "ms", rows=n_rows, k=5)
    report.add(
        "search_p95", round(float(np.percentile(lat, 95)), 3), "ms", rows=n_rows, k=5, target="<= 50 ms"
    )
    report.add(
        "search_cpu_time_p50", round(float(np.percentile(cpu, 50)), 3), "ms",
        how="CPU time of the searching thread: the cost of a search without waiting for the scheduler",
    )  # fmt: skip
    report.add("search_recall_at_1_vs_brute_force", round(agree / queries, 4), "fraction", queries=queries)
    report.add("search_hit_rate_noisy_queries", round(hits / queries, 4), "fraction", noise_sigma=0.02)


def _bench_photo_search(report: BenchReport, g) -> None:
    """End to end: one photo -> detect + landmarks + embed + search."""
    from skimage import data as skdata

    img = skdata.astronaut()
    lat, m = [], []
    for _ in range(5):
        s = time.perf_counter()
        m = g.search(img, 1)
        lat.append((time.perf_counter() - s) * 1e3)
    report.add(
        "search_photo_512px_median", round(float(np.median(lat)), 1), "ms", top1=m[0].name if m else None
    )


_VIDEO_HOW = (
    "decode + HOG (whole frame at 480 px wide every 5th frame, else a window around each tracked face) "
    "+ 68 landmarks + pose/EAR every frame + ResNet embed and search per track every 10 frames + draw "
    "+ mp4 encode"
)


def _bench_video(report: BenchReport, rec, g, tmp: Path, frames: int, progress: bool) -> None:
    """Frames per second on a synthetic 640x480 clip with one face, at three settings."""
    from .video import process_video

    clip = make_face_video(tmp / "clip.mp4", frames=frames)
    settings = (
        ("video_fps_640x480_hog", {}),
        ("video_fps_640x480_hog_full_frame_every_frame", {"redetect_every": 1}),
        ("video_fps_640x480_hog_embed_every_frame", {"redetect_every": 1, "reembed_every": 1}),
    )
    for name, opts in settings:
        vr = process_video(clip, rec, gallery=g, out=tmp / f"{name}.mp4", progress=progress, **opts)
        notes = {
            "reembed_every": DEFAULTS["reembed_every"],
            "redetect_every": DEFAULTS["redetect_every"],
            **opts,
        }
        if not opts:
            notes.update(identities=vr.identities, detect_width=DEFAULTS["detect_width"], how=_VIDEO_HOW)
        report.add(name, vr.fps, "frames/s", frames=vr.frames, processing_fps=vr.processing_fps,
                   faces_per_frame=vr.faces_per_frame, **notes)  # fmt: skip
