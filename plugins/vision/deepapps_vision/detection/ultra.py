"""Making ultralytics work offline and quietly, and building YOLO models without pickles.

Call :func:`setup` before importing ultralytics: it sets ``YOLO_OFFLINE=1`` and
``YOLO_CONFIG_DIR`` (under the deepapps home), places a TTF font where ultralytics looks
for ``Arial.ttf`` (otherwise training tries to download it), and sends its log to stderr
so ``--json`` output on stdout stays one object.

Threads: on import ultralytics sets ``OMP_NUM_THREADS=1`` when it is unset, and its
``select_device`` (run by every predict/train/val) calls ``torch.set_num_threads(cores - 1)``,
i.e. **one thread on a 2-core machine**, for the whole process. :func:`setup` keeps deepapps'
thread policy instead: ``DEEPAPPS_THREADS``, else ``OMP_NUM_THREADS``, else every core.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

_DONE = False


def config_dir() -> Path:
    from deepapps.runtime.home import home

    path = home() / "ultralytics"
    path.mkdir(parents=True, exist_ok=True)
    return path


def thread_count() -> int:
    """CPU threads for ultralytics work: DEEPAPPS_THREADS, else OMP_NUM_THREADS, else every core."""
    from deepapps.runtime.threads import thread_count as count

    return count("OMP_NUM_THREADS")


def setup() -> None:
    """Idempotent: offline flags, config dir, fonts, logging to stderr."""
    global _DONE
    if _DONE:
        return
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir()))
    os.environ.setdefault("YOLO_VERBOSE", "False")
    fonts = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            if not (fonts / name).exists() and dejavu.exists():
                shutil.copyfile(dejavu, fonts / name)
    except ImportError:  # pragma: no cover - matplotlib comes with ultralytics
        pass
    threads = thread_count()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # ultralytics would put 1 here
    import ultralytics.utils as uu
    import ultralytics.utils.torch_utils as tu

    tu.NUM_THREADS = threads  # what select_device() passes to torch.set_num_threads

    for handler in uu.LOGGER.handlers:
        if hasattr(handler, "stream") and handler.stream is sys.stdout:
            handler.stream = sys.stderr
    try:  # ultralytics patches PIL.Image.open to pip-install pi-heif on unknown files: not offline
        import ultralytics.utils.patches as patches

        patches._pil_plugins_registered = True
    except (ImportError, AttributeError):  # pragma: no cover - other ultralytics versions
        pass
    if uu.SETTINGS.get("sync"):
        uu.SETTINGS.update({"sync": False})
    _DONE = True


def yolo(source: str | Path | Any, task: str = "detect"):
    """An ``ultralytics.YOLO`` for a weights file, a yaml, or a hub name (after :func:`setup`)."""
    setup()
    from ultralytics import YOLO

    return YOLO(str(source) if isinstance(source, Path) else source, task=task)


def save_safetensors(yolo_model: Any, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Save a detection model as safetensors (fp16) + its architecture yaml and class names."""
    import torch

    from deepapps.runtime.checkpoint import save_checkpoint

    net = yolo_model.model if hasattr(yolo_model, "predictor") else yolo_model
    tensors = {
        k: (v.detach().to("cpu").half() if v.is_floating_point() else v.detach().to("cpu")).contiguous()
        for k, v in net.state_dict().items()
    }
    cfg = json.loads(json.dumps(net.yaml))  # plain JSON types only
    cfg["nc"] = len(net.names)
    scale = cfg.get("scale") or ""
    if scale and isinstance(cfg.get("scales"), dict) and scale in cfg["scales"]:
        cfg["scales"] = {scale: cfg["scales"][scale]}  # the architecture no longer depends on a file name
    cfg.pop("yaml_file", None)
    metadata = {
        "format": "deepapps-yolo-v1",
        "yaml": cfg,
        "names": {str(int(k)): v for k, v in net.names.items()},
        "stride": [float(s) for s in torch.as_tensor(net.stride).tolist()],
        **(extra or {}),
    }
    return save_checkpoint(path, tensors, metadata)


def load_safetensors(path: str | Path):
    """Rebuild a YOLO from a :func:`save_safetensors` file: architecture from yaml, then the state dict.

    No pickle is read; the result is an ``ultralytics.YOLO`` ready for predict/val/track/export.
    """
    import tempfile

    import yaml

    from deepapps.errors import CheckpointError
    from deepapps.runtime.checkpoint import load_checkpoint

    tensors, metadata = load_checkpoint(path)
    if metadata.get("format") != "deepapps-yolo-v1":
        raise CheckpointError(f"{path}: not a deepapps YOLO checkpoint (format {metadata.get('format')!r})")
    cfg = metadata["yaml"]
    names = {int(k): v for k, v in metadata["names"].items()}
    scale = cfg.get("scale") or ""
    with tempfile.TemporaryDirectory(prefix="deepapps-yolo-") as tmp:
        # ultralytics reads the scale letter from the file name (yolo11n.yaml -> n)
        cfg_path = Path(tmp) / (f"yolo11{scale}.yaml" if scale in {"n", "s", "m", "l", "x"} else "model.yaml")
        cfg_path.write_text(yaml.safe_dump(cfg))
        model = yolo(cfg_path)
    net = model.model
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    net.names = names
    net.float().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    model.overrides["model"] = str(path)
    model.ckpt_path = None
    return model
