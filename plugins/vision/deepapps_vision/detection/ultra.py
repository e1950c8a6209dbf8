"""Making ultralytics work offline and quietly, and building YOLO models without pickles or eval.

Call :func:`setup` before importing ultralytics: it applies deepapps' offline policy (one place
for every library), points ``YOLO_CONFIG_DIR`` under the deepapps home unless set, places a TTF
font where ultralytics looks for ``Arial.ttf`` (otherwise training tries to download it), and
sends its log to stderr so ``--json`` output on stdout stays one object.

Threads: on import ultralytics sets ``OMP_NUM_THREADS=1`` when it is unset, and its
``select_device`` (run by every predict/train/val) calls ``torch.set_num_threads(cores - 1)``,
i.e. **one thread on a 2-core machine**, for the whole process. :func:`setup` keeps deepapps'
thread policy instead: ``DEEPAPPS_THREADS``, else ``OMP_NUM_THREADS``, else every core.

Architectures: ultralytics builds a network from a yaml by looking its layer names up in its
own module namespace and ``eval``-ing the ``activation`` field. A yaml (a user's file, or the
one inside a ``.safetensors`` file's metadata) is therefore checked by :func:`check_architecture`
first: every layer must name a ``torch.nn.Module`` class and the activation must be a plain
``nn.Name(literal, ...)`` call.
"""

from __future__ import annotations

import json
import os
import re
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
    """Idempotent: offline policy, config dir, fonts, logging to stderr."""
    global _DONE
    if _DONE:
        return
    from deepapps.runtime.offline import apply_offline_policy

    apply_offline_policy()
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir()))
    os.environ.setdefault("YOLO_VERBOSE", "False")
    _place_fonts(Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics")
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


def _place_fonts(folder: Path) -> None:
    """matplotlib's DejaVuSans as the Arial files ultralytics would download (found without importing
    matplotlib, which a prediction does not need)."""
    import importlib.util

    names = [n for n in ("Arial.ttf", "Arial.Unicode.ttf") if not (folder / n).exists()]
    spec = importlib.util.find_spec("matplotlib") if names else None
    if spec is None or spec.origin is None:
        return
    dejavu = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
    if dejavu.exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copyfile(dejavu, folder / name)


def yolo(source: str | Path, task: str = "detect"):
    """An ``ultralytics.YOLO`` for a local weights file (after :func:`setup`); callers check the format."""
    setup()
    from ultralytics import YOLO

    return YOLO(str(source), task=task)


_ACTIVATION = re.compile(r"^(torch\.)?nn\.([A-Za-z_][A-Za-z0-9_]*)\(\s*[-+0-9.eE,\s]*\)$")


def check_architecture(cfg: Any, source: str | Path) -> None:
    """Refuse an architecture that would make ultralytics call something other than a layer class."""
    import torch

    from deepapps.errors import CheckpointError

    setup()  # before ultralytics is imported

    def bad(what: str) -> CheckpointError:
        return CheckpointError(f"{source}: not a usable YOLO architecture ({what})")

    if (
        not isinstance(cfg, dict)
        or not isinstance(cfg.get("backbone"), list)
        or not isinstance(cfg.get("head"), list)
    ):
        raise bad("expected a mapping with 'backbone' and 'head' layer lists")
    act = cfg.get("activation")
    if act is not None:
        match = _ACTIVATION.match(str(act).strip())
        if not match or not _is_module_class(getattr(torch.nn, match.group(2), None)):
            raise bad(f"activation {act!r} must look like nn.SiLU() or nn.LeakyReLU(0.1)")
    import ultralytics.nn.tasks as tasks

    for layer in cfg["backbone"] + cfg["head"]:
        if not isinstance(layer, (list, tuple)) or len(layer) != 4 or not isinstance(layer[2], str):
            raise bad(f"layer {layer!r} is not [from, repeats, module, args]")
        name = layer[2]
        found = getattr(torch.nn, name[3:], None) if name.startswith("nn.") else vars(tasks).get(name)
        if not _is_module_class(found):
            raise bad(f"layer module {name!r} is not a known network layer")


def _is_module_class(obj: Any) -> bool:
    import torch

    return isinstance(obj, type) and issubclass(obj, torch.nn.Module)


def architecture(source: str | Path, keep_in: Path | None = None):
    """An untrained ``YOLO`` from an architecture yaml: a local file (checked first), one shipped
    next to this module (``yolo11n-half.yaml``), or one of ultralytics' own (``yolo11s.yaml``).

    ``keep_in``: a folder for the checked copy that outlives the call (ultralytics' trainer reads
    the architecture file again when training starts); without it the copy is temporary.
    """
    import yaml

    from deepapps.errors import CheckpointError, ModelNotAvailableError

    path = Path(source)
    packaged = Path(__file__).parent / path.name
    if not path.is_file() and path.name == str(source) and packaged.is_file():
        path = packaged
    if not path.is_file():
        if path.name != str(source) or path.suffix not in {".yaml", ".yml"}:
            raise ModelNotAvailableError(f"architecture file {source} does not exist")
        try:
            return yolo(path.name)  # an ultralytics architecture, from its own package
        except FileNotFoundError as exc:
            raise ModelNotAvailableError(
                f"architecture {source}: no such file here nor in ultralytics"
            ) from exc
    try:
        cfg = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CheckpointError(f"{source}: cannot be read as a yaml file ({exc})") from exc
    check_architecture(cfg, source)
    return build(cfg, path.name, keep_in)


def build(cfg: dict[str, Any], file_name: str, keep_in: Path | None = None):
    """A YOLO from an already checked architecture, built from a private copy of it.

    ultralytics reads the scale letter from the file name (``yolo11n.yaml`` -> n) and prefers a
    scale-less sibling file (``yolo11.yaml``) when one exists beside it: a fresh folder holding
    only the checked copy (temporary, or new inside ``keep_in``) makes sure it is the one built.
    """
    import tempfile

    import yaml

    def build_in(folder: str):
        cfg_path = Path(folder) / Path(file_name).name
        cfg_path.write_text(yaml.safe_dump(cfg))
        return yolo(cfg_path)

    if keep_in is not None:
        keep_in.mkdir(parents=True, exist_ok=True)
        return build_in(tempfile.mkdtemp(prefix="architecture-", dir=keep_in))
    with tempfile.TemporaryDirectory(prefix="deepapps-yolo-") as tmp:
        return build_in(tmp)


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
    from deepapps.errors import CheckpointError
    from deepapps.runtime.checkpoint import load_checkpoint

    tensors, metadata = load_checkpoint(path)
    if metadata.get("format") != "deepapps-yolo-v1":
        raise CheckpointError(f"{path}: not a deepapps YOLO checkpoint (format {metadata.get('format')!r})")
    cfg = metadata.get("yaml")
    check_architecture(cfg, path)
    scale = cfg.get("scale") or ""
    model = build_skeleton(cfg, f"yolo11{scale}.yaml" if scale in {"n", "s", "m", "l", "x"} else "model.yaml")
    net = model.model
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: weights do not fit the architecture (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    net.names = {int(k): str(v) for k, v in dict(metadata.get("names") or {}).items()}
    net.float().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    model.overrides["model"] = str(path)
    model.ckpt_path = None
    return model


def build_skeleton(cfg: dict[str, Any], file_name: str):
    """:func:`build` for weights that come next, without ultralytics' stride-probing convolutions.

    A new ultralytics network measures its strides with a forward pass at 256 px. On a cold CPU
    that pass costs seconds: every new convolution shape is compiled once by oneDNN, and the first
    real image (another size) compiles its own shapes again. Only the output shapes matter there,
    so while the network is built each convolution returns zeros of its output shape instead.
    """
    from torch.overrides import TorchFunctionMode

    class ShapeOnlyConvolutions(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in _conv2d_functions():
                shape = _conv2d_output_shape(*args, **kwargs)
                if shape is not None:
                    return args[0].new_zeros(shape)
            return func(*args, **kwargs)

    with ShapeOnlyConvolutions():
        return build(cfg, file_name)


def _conv2d_functions() -> tuple:
    import torch

    return (torch.conv2d, torch.nn.functional.conv2d)


def _conv2d_output_shape(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[int, ...] | None:
    """``conv2d``'s output shape, or None for what this does not cover (string padding, 3-D input)."""
    if isinstance(padding, str) or input.dim() != 4:
        return None

    def pair(v: Any) -> tuple[int, int]:
        return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))

    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    kh, kw = int(weight.shape[2]), int(weight.shape[3])
    height = (input.shape[2] + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    width = (input.shape[3] + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    return (int(input.shape[0]), int(weight.shape[0]), height, width)


_PREDICTOR: Any = None


def predictor_class() -> Any:
    """ultralytics' detection predictor without its warm-up.

    On a CPU the warm-up runs nothing: it only imports torchvision (seconds, for its NMS kernel;
    ultralytics' own NMS gives the same boxes); on a GPU it runs one throw-away forward pass.
    Passed as ``predictor=`` to ``YOLO.predict``.
    """
    global _PREDICTOR
    if _PREDICTOR is None:
        setup()
        from ultralytics.models.yolo.detect import DetectionPredictor

        class NoWarmupPredictor(DetectionPredictor):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.done_warmup = True

        _PREDICTOR = NoWarmupPredictor
    return _PREDICTOR
