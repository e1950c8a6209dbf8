"""Loading detection weights from a :class:`~deepapps.resolution.ModelRef`, pickles only on request.

ultralytics reads ``.pt`` files with ``torch.load(weights_only=False)``: a ``.pt`` (or TorchScript)
file can run any code it carries the moment it is loaded. So deepapps loads, without asking:

- ``.safetensors`` written by deepapps (tensors + a checked architecture: no pickle, no eval);
- ``.onnx`` (run by ONNX Runtime; its metadata is parsed as literals);
- ``.yaml`` architectures (checked before ultralytics builds them: it ``eval``s some fields);

and loads pickled weights only with ``trust_weights=True`` (``--trust-weights``). Hub references
are refused: ultralytics would download them; detection takes local files only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deepapps.errors import DeepAppsError, ModelNotAvailableError
from deepapps.resolution import ModelRef

SAFE_KINDS = {".safetensors": "safetensors", ".onnx": "onnx", ".yaml": "yaml", ".yml": "yaml"}
PICKLE_SUFFIXES = (".pt", ".pth", ".torchscript")


class UntrustedWeightsError(DeepAppsError):
    """Pickled weights given without ``trust_weights=True``."""


def weights_kind(path: Path) -> str:
    """``safetensors``, ``onnx``, ``yaml`` or ``pickle``; anything else is refused with what works."""
    suffix = path.suffix.lower()
    if suffix in SAFE_KINDS:
        return SAFE_KINDS[suffix]
    if suffix in PICKLE_SUFFIXES:
        return "pickle"
    raise ModelNotAvailableError(
        f"model {path}: {suffix or 'no extension'} is not a detection weights format deepapps loads; "
        "use .safetensors (deepapps), .onnx, an architecture .yaml, or a .pt with --trust-weights"
    )


def refuse_pickle(path: Path | str) -> UntrustedWeightsError:
    return UntrustedWeightsError(
        f"model {path}: pickled weights run any code inside them when loaded, so deepapps refuses them; "
        "if you made this file or fully trust it, pass --trust-weights (Python: trust_weights=True), "
        "then save a safe copy once with --export safetensors (or onnx) and use that from then on"
    )


def load_yolo(model: ModelRef, trust_weights: bool = False) -> Any:
    """An ``ultralytics.YOLO`` for ``model``: checked, offline, and without unpickling unless trusted."""
    from . import ultra

    if model.kind == "hub":
        raise ModelNotAvailableError(
            f"model {model.name!r}: object detection loads local weights only (a hub download would "
            "unpickle a remote file); download it yourself and pass the file, or a registered model name"
        )
    path = Path(model.path)
    kind = weights_kind(path)
    if kind == "pickle" and not trust_weights:
        raise refuse_pickle(model.name)
    if kind == "yaml":
        return ultra.architecture(path)
    if not path.is_file():
        raise ModelNotAvailableError(
            f"model file {path} does not exist (or is a folder); pass a weights file"
        )
    if kind == "safetensors":
        return ultra.load_safetensors(path)
    return ultra.yolo(path)


def trained_imgsz(model: ModelRef, yolo: Any) -> int | None:
    """The image size the model was trained or exported at, when its file says so."""
    path = Path(model.path)
    kind = weights_kind(path)
    if kind == "safetensors":
        from deepapps.runtime.checkpoint import read_metadata

        size = read_metadata(path).get("imgsz")
        return int(size) if isinstance(size, int) else None
    if kind == "onnx":
        return _onnx_imgsz(path)
    args = getattr(yolo.model, "args", None)
    if kind == "pickle" and isinstance(args, dict) and isinstance(args.get("imgsz"), int):
        return int(args["imgsz"])
    return None


def _onnx_imgsz(path: Path) -> int | None:
    """The square input size an ultralytics ONNX export declares (its input shape is fixed)."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    if len(shape) == 4 and isinstance(shape[2], int) and shape[2] == shape[3]:
        return int(shape[2])
    return None


def ultra_device(device: str) -> str:
    """deepapps' device string in ultralytics' spelling (``cuda:1`` -> ``1``)."""
    if device.startswith("cuda"):
        return device.partition(":")[2] or "0"
    return device
