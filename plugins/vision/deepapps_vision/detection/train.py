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
from deepapps.resolution import ModelRef

from .specs import SCENE_OPTIONS, TASK, TRAIN_OPTIONS

_DEFAULTS = {o.name: o.default for o in TRAIN_OPTIONS}
_SCENES = {o.name: o.default for o in SCENE_OPTIONS}
# declared options that go to ultralytics' train() unchanged when set
ULTRALYTICS_ARGS = (
    "epochs",
    "imgsz",
    "batch",
    "nbs",
    "patience",
    "seed",
    "optimizer",
    "lr0",
    "warmup_epochs",
    "close_mosaic",
    "mosaic",
    "cache",
    "val",
    "plots",
)


def resolve_data(
    dataset: str | None,
    scene_count: int = _SCENES["scene_count"],
    scene_seed: int = _SCENES["scene_seed"],
    scene_size: int = _SCENES["scene_size"],
) -> Path:
    """A data yaml path: ``scenes`` (generated or reused with the scene options) or a YOLO data yaml."""
    if dataset in (None, "scenes"):
        from deepapps_vision.scenes import generate

        return generate(scene_count, seed=scene_seed, size=scene_size)
    path = Path(dataset)
    if path.is_dir() and (path / "data.yaml").exists():
        return path / "data.yaml"
    if path.suffix in {".yaml", ".yml"} and path.exists():
        return path
    raise InputError(
        f"dataset {dataset!r}: not 'scenes', a data.yaml file, or a folder holding data.yaml; "
        "pass --dataset scenes or --dataset path/to/data.yaml"
    )


def start_model(
    model: ModelRef | None, arch: str, trust_weights: bool = False, out: Path | None = None
) -> tuple[Any, str]:
    """The YOLO to train and what it started from: a fresh ``arch`` (no model), an architecture
    yaml, or weights to fine-tune (pickled ones only with ``trust_weights``). A checked copy of an
    architecture is kept in ``out`` (the trainer reads the file again)."""
    from . import ultra
    from .loading import load_yolo, weights_kind

    if model is None:
        return ultra.architecture(arch, keep_in=out), arch
    if weights_kind(Path(model.name if model.kind == "path" else model.path)) == "yaml":
        return ultra.architecture(model.local_path or model.name, keep_in=out), model.name
    start = load_yolo(model, trust_weights)
    if not start.ckpt:
        # ultralytics fine-tunes from the loaded weights only when the model carries a checkpoint;
        # without one it would silently rebuild a fresh model from the yaml
        start.ckpt = {"model": start.model}
    return start, model.name


class _EpochLog:
    """ultralytics callbacks -> metrics.jsonl rows, a progress bar, and the final validation's metrics."""

    def __init__(self, out: Path, epochs: int, progress: bool) -> None:
        from deepapps.runtime.progress import progress as bar
        from deepapps.runtime.training import MetricsLog

        self.log = MetricsLog(out)
        self.bar = bar(total=epochs, desc="training epochs", unit="epoch", disable=not progress)
        self.final: dict[str, Any] = {}
        self.in_epoch = False

    def on_train_epoch_start(self, trainer: Any) -> None:
        self.in_epoch = True

    def on_fit_epoch_end(self, trainer: Any) -> None:
        metrics = {_metric_name(k): round(float(v), 5) for k, v in (trainer.metrics or {}).items()}
        if not self.in_epoch:  # ultralytics' final_eval of best.pt, after the last epoch
            self.final.update(metrics)
            return
        self.in_epoch = False
        losses = trainer.label_loss_items(trainer.tloss, prefix="train")
        row = {
            "epoch": trainer.epoch + 1,
            **{k.replace("/", "_"): round(float(v), 5) for k, v in losses.items()},
        }
        row.update({k.replace("/", "_"): v for k, v in metrics.items()})
        self.log.log(**row)
        if self.bar.total != trainer.epochs:
            self.bar.total = trainer.epochs
        self.bar.update(1)
        self.bar.set_postfix(mAP50_95=row.get("mAP50-95"), mAP50=row.get("mAP50"))

    def attach(self, yolo: Any, workers: int | None) -> None:
        yolo.add_callback("on_train_epoch_start", self.on_train_epoch_start)
        yolo.add_callback("on_fit_epoch_end", self.on_fit_epoch_end)
        if workers is not None:

            def keep_workers(trainer: Any) -> None:
                trainer.args.workers = workers  # undo ultralytics' `workers = 0` on CPU (trainer init)

            yolo.add_callback("on_pretrain_routine_start", keep_workers)


def _metric_name(key: str) -> str:
    return key.replace("metrics/", "").replace("(B)", "")


def ultralytics_args(
    data: Path, out: Path, device: str, workers: int | None, hours: float | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The keyword arguments of ultralytics' ``train`` for the declared options (unset ones left out)."""
    from .loading import ultra_device

    args = {k: options[k] for k in ULTRALYTICS_ARGS if options.get(k) is not None}
    args.update(
        data=str(data),
        workers=2 if workers is None else workers,  # None: 2 on GPU, ultralytics' 0 on CPU
        device=ultra_device(device),
        project=str(out.resolve()),
        name="ultralytics",
        exist_ok=True,
        deterministic=True,
        amp=False,  # ultralytics' AMP check downloads a model; fp32 training (fp16 is refused above)
        verbose=False,
    )
    if hours:
        args["time"] = float(hours)
    return args


def train(
    model: ModelRef | None = None,
    dataset: str | None = "scenes",
    out_dir: str | Path = "runs/train/object-detection",
    device: str = "cpu",
    precision: str = "fp32",
    **options: Any,
) -> dict[str, Any]:
    """Train a detector; returns a JSON-able summary (final metrics, paths, seconds).

    ``options`` are the declared train options (``deepapps train object-detection --help``): the core
    passes every one, checked; from Python, unknown names are refused and missing ones take the
    declared defaults. ``workers`` is honoured on CPU too (ultralytics forces 0 there), which pays off
    for small models whose steps are short next to the mosaic augmentation. ``hours`` caps training
    by wall time (ultralytics' ``time``: the schedule is re-fit after the first epoch).
    """
    from deepapps.options import check_options

    from . import ultra

    opts = check_options(TRAIN_OPTIONS, options, "deepapps train object-detection")
    if model is not None and not isinstance(model, ModelRef):  # direct Python use: a name or a path
        from deepapps.resolution import resolve_model

        model = resolve_model(TASK, model, allow_missing_file=True)
    if precision != "fp32":
        raise InputError(
            f"object-detection trains in fp32 only (ultralytics' mixed-precision check downloads a model); "
            f"drop --precision {precision}"
        )
    data = resolve_data(dataset, opts["scene_count"], opts["scene_seed"], opts["scene_size"])
    ultra.setup()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    yolo, start = start_model(model, opts["arch"], opts["trust_weights"], out)
    epochs = _EpochLog(out, opts["epochs"], opts["progress"])
    epochs.attach(yolo, opts["workers"])
    t0 = time.perf_counter()
    try:
        # ultralytics' own bars print to stdout; keep --json clean
        with contextlib.redirect_stdout(sys.stderr):
            yolo.train(**ultralytics_args(data, out, device, opts["workers"], opts["hours"], opts))
    finally:
        epochs.bar.close()
    seconds = time.perf_counter() - t0
    epochs.log.plot(title=f"object-detection on {Path(data).parent.name}")
    return _finish(yolo, out, data, start, opts["imgsz"], epochs, seconds)


def _finish(
    yolo: Any, out: Path, data: Path, start: str, imgsz: int, epochs: _EpochLog, seconds: float
) -> dict:
    """Save the best weights as safetensors and summarise the run."""
    from . import ultra

    best = out / "ultralytics" / "weights" / "best.pt"
    final = ultra.yolo(best) if best.exists() else yolo  # best.pt was written by this run: ours to trust
    names = final.model.names
    rows = epochs.log.rows
    path = ultra.save_safetensors(
        final.model,
        out / "model.safetensors",
        extra={"imgsz": imgsz, "data": str(data), "trained_from": start, "epochs": len(rows)},
    )
    return {
        "model": str(path),
        "ultralytics_weights": str(best) if best.exists() else None,
        "data": str(data),
        "classes": [names[i] for i in sorted(names)],
        "epochs": len(rows),
        "imgsz": imgsz,
        "last_epoch": rows[-1] if rows else {},
        "best_weights_val": epochs.final,
        "best_mAP50-95": max((r.get("mAP50-95", 0.0) for r in rows), default=None),
        "metrics": str(out / "metrics.jsonl"),
        "plot": str(out / "metrics.png"),
        "seconds": round(seconds, 1),
    }
