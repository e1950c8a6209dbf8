"""``deepapps train object-detection``: ultralytics training, offline, with deepapps' files.

Trains from an architecture yaml (default ``yolo11n.yaml``) or continues from weights, on
the ``scenes`` dataset (generated on demand) or any YOLO-format data yaml. Writes
ultralytics' run folder plus ``metrics.jsonl``/``metrics.png`` (MetricsLog) and
``model.safetensors`` — the pickle-free checkpoint the Detector loads.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Any

from deepapps.errors import InputError


def resolve_data(dataset: str | None, **options: Any) -> Path:
    """A data yaml path: ``scenes`` (generated/reused with n, seed, size options) or a yaml file."""
    if dataset in (None, "scenes"):
        from deepapps_vision.scenes import generate

        gen = {k: options[k] for k in ("n", "seed", "size") if k in options}
        return generate(**gen)
    path = Path(dataset)
    if path.is_dir() and (path / "data.yaml").exists():
        return path / "data.yaml"
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return path
    raise InputError(
        f"dataset {dataset!r}: not 'scenes', a data.yaml file, or a folder holding data.yaml; "
        "pass --dataset scenes or --dataset path/to/data.yaml"
    )


def _start_model(model: Any, arch: str):
    """YOLO to train: a ModelSpec/None means a fresh ``arch``; a path means those weights or yaml."""
    from deepapps.registry import registry

    from . import ultra

    if model is None or not isinstance(model, (str, Path)):
        packaged = Path(__file__).parent / arch  # architectures that ship with deepapps (yolo11n-half.yaml)
        return ultra.yolo(packaged if packaged.is_file() else arch), arch
    text = str(model)
    if registry.has_model(text):  # fine-tune a registered model
        from deepapps.runtime.pull import model_path

        text = str(model_path(registry.model(text)))
    if text.endswith(".safetensors"):
        start = ultra.load_safetensors(text)
        # ultralytics fine-tunes from the loaded weights only when the model carries a checkpoint;
        # without one it would silently rebuild a fresh model from the yaml
        start.ckpt = {"model": start.model}
        return start, text
    return ultra.yolo(text), text


def train(
    model: Any = None,
    dataset: str | None = "scenes",
    out_dir: str | Path = "runs/train/object-detection",
    device: str = "cpu",
    *,
    arch: str = "yolo11n.yaml",
    epochs: int = 30,
    imgsz: int = 320,
    batch: int = 16,
    workers: int | None = None,
    hours: float | None = None,
    patience: int = 100,
    seed: int = 0,
    plots: bool = True,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Train a detector; returns a JSON-able summary (final metrics, paths, seconds).

    ``workers``: data-loading processes. ultralytics forces 0 on CPU (loading then runs between
    training steps); an explicit number is honoured on CPU too, which pays off for small models
    whose steps are short next to the mosaic augmentation (``None``: ultralytics' 0 on CPU, 2 on GPU).
    ``hours`` caps training by wall time (ultralytics' ``time``: the schedule is re-fit to the
    time after the first epoch). Other options pass to ``ultralytics`` ``train`` (e.g. ``lr0``).
    """
    from deepapps.runtime.progress import progress as bar
    from deepapps.runtime.training import MetricsLog

    from . import ultra

    data = resolve_data(dataset, **options)
    for k in ("n", "seed", "size"):
        options.pop(k, None)
    ultra.setup()
    yolo, start = _start_model(model, arch)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(out)
    pbar = bar(total=epochs, desc="training epochs", unit="epoch", disable=not progress)

    final_metrics: dict[str, Any] = {}
    in_epoch = {"flag": False}

    def on_train_epoch_start(trainer: Any) -> None:
        in_epoch["flag"] = True

    def on_fit_epoch_end(trainer: Any) -> None:
        if not in_epoch["flag"]:  # ultralytics' final_eval of best.pt, after the last epoch
            final_metrics.update(
                {
                    k.replace("metrics/", "").replace("(B)", ""): round(float(v), 5)
                    for k, v in trainer.metrics.items()
                }
            )
            return
        in_epoch["flag"] = False
        row: dict[str, Any] = {"epoch": trainer.epoch + 1}
        losses = trainer.label_loss_items(trainer.tloss, prefix="train")
        row.update({k.replace("/", "_"): round(float(v), 5) for k, v in losses.items()})
        for k, v in (trainer.metrics or {}).items():
            key = k.replace("metrics/", "").replace("(B)", "").replace("/", "_")
            row[key] = round(float(v), 5)
        log.log(**row)
        if pbar.total != trainer.epochs:
            pbar.total = trainer.epochs
        pbar.update(1)
        pbar.set_postfix(mAP50_95=row.get("mAP50-95"), mAP50=row.get("mAP50"))

    if workers is not None:

        def on_pretrain_routine_start(trainer: Any) -> None:
            trainer.args.workers = workers  # undo ultralytics' `workers = 0` on CPU (trainer init)

        yolo.add_callback("on_pretrain_routine_start", on_pretrain_routine_start)
    yolo.add_callback("on_train_epoch_start", on_train_epoch_start)
    yolo.add_callback("on_fit_epoch_end", on_fit_epoch_end)
    t0 = time.perf_counter()
    kwargs = dict(
        data=str(data),
        epochs=epochs,
        imgsz=imgsz,
        batch=batch,
        workers=2 if workers is None else workers,  # None: 2 on GPU, ultralytics' 0 on CPU
        device="cpu" if device == "cpu" else device.replace("cuda:", "").replace("cuda", "0"),
        project=str(out.resolve()),
        name="ultralytics",
        exist_ok=True,
        patience=patience,
        seed=seed,
        deterministic=True,
        amp=False,  # ultralytics' AMP check downloads a model; full precision is exact anyway
        plots=plots,
        verbose=False,
        **options,
    )
    if hours:
        kwargs["time"] = float(hours)
    try:
        with contextlib.redirect_stdout(
            sys.stderr
        ):  # ultralytics' own bars print to stdout; keep --json clean
            yolo.train(**kwargs)
    finally:
        pbar.close()
    seconds = time.perf_counter() - t0
    log.plot(title=f"object-detection on {Path(data).parent.name}")

    best = out / "ultralytics" / "weights" / "best.pt"
    final = ultra.yolo(best) if best.exists() else yolo
    names = final.model.names
    safetensors_path = ultra.save_safetensors(
        final.model,
        out / "model.safetensors",
        extra={"imgsz": imgsz, "data": str(data), "trained_from": start, "epochs": len(log.rows)},
    )
    last = log.rows[-1] if log.rows else {}
    return {
        "model": str(safetensors_path),
        "ultralytics_weights": str(best) if best.exists() else None,
        "data": str(data),
        "classes": [names[i] for i in sorted(names)],
        "epochs": len(log.rows),
        "imgsz": imgsz,
        "last_epoch": last,
        "best_weights_val": final_metrics,
        "best_mAP50-95": max((r.get("mAP50-95", 0.0) for r in log.rows), default=None),
        "metrics": str(out / "metrics.jsonl"),
        "plot": str(out / "metrics.png"),
        "seconds": round(seconds, 1),
    }
