"""Object detection against untrusted files: pickles, crafted architectures, offline names, huge frames."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import deepapps
from deepapps.errors import CheckpointError, InputError, ModelNotAvailableError
from deepapps.runtime.checkpoint import save_checkpoint
from deepapps_vision.common.video import read_frames, write_video
from deepapps_vision.detection import ultra
from deepapps_vision.detection.coldstart import write_ultralytics_checkpoint
from deepapps_vision.detection.detector import Detector
from deepapps_vision.detection.loading import UntrustedWeightsError

BUNDLED = Path(ultra.__file__).parent / "yolo11n-half-scenes.safetensors"


class _CreatesFile:
    """Unpickling this creates the file ``path`` (what a hostile weights file could do instead)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture()
def hostile_pt(tmp_path):
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "weights.pt"
    torch.save({"model": _CreatesFile(marker), "train_args": {}}, path)
    return path, marker


@pytest.fixture(scope="module")
def tiny_pt(tmp_path_factory):
    """A real ultralytics checkpoint (the bundled network, saved the way ultralytics saves models)."""
    yolo = ultra.load_safetensors(BUNDLED)
    return write_ultralytics_checkpoint(yolo, tmp_path_factory.mktemp("pt") / "tiny.pt", 320)


def test_pickled_weights_are_refused_and_nothing_runs(hostile_pt):
    path, marker = hostile_pt
    for load in (
        lambda: deepapps.load("object-detection", str(path), device="cpu", cache=False),
        lambda: Detector(path, device="cpu"),
    ):
        with pytest.raises(UntrustedWeightsError, match="--trust-weights.*trust_weights=True"):
            load()
        assert not marker.exists()
    # the file really is hostile: unpickling it (what ultralytics would do) creates the marker
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_pickled_weights_load_when_trusted(tiny_pt):
    image = np.zeros((320, 320, 3), np.uint8)
    image[100:220, 80:240] = (200, 120, 40)
    trusted = Detector(tiny_pt, device="cpu", trust_weights=True, conf=0.001)
    safe = Detector(BUNDLED, device="cpu", conf=0.001)
    assert trusted.names == safe.names and trusted.imgsz == 320
    a, b = trusted(image), safe(image)
    assert len(a.detections) == len(b.detections) > 0
    np.testing.assert_allclose(a.xyxy, b.xyxy, atol=0.5)  # the same fp16 weights, in two containers


def test_trusted_pt_gets_a_safe_copy(tiny_pt, tmp_path):
    from deepapps_vision.scenes import render_scene

    det = Detector(tiny_pt, device="cpu", trust_weights=True)
    image = render_scene(10_001, 320).image
    check = det(image, export="safetensors", out=tmp_path / "copy.safetensors", conf=0.05)
    assert check.path.endswith("copy.safetensors") and check.boxes_torch == check.boxes_export > 0
    assert check.max_abs_box_diff_px < 0.01 and check.max_abs_conf_diff < 1e-3
    copy = Detector(check.path, device="cpu")  # no trust needed any more
    assert copy.names == det.names and copy.imgsz == 320


def _safetensors_with(tmp_path: Path, name: str, **yaml_changes) -> Path:
    from deepapps.runtime.checkpoint import load_checkpoint

    tensors, meta = load_checkpoint(BUNDLED)
    meta["yaml"].update(yaml_changes)
    return save_checkpoint(tmp_path / name, tensors, meta)


def test_crafted_architecture_in_safetensors_is_refused(tmp_path):
    marker = tmp_path / "pwned.txt"
    evil_act = _safetensors_with(
        tmp_path, "act.safetensors", activation=f"__import__('pathlib').Path({str(marker)!r}).touch()"
    )
    with pytest.raises(CheckpointError, match="activation"):
        ultra.load_safetensors(evil_act)
    assert not marker.exists()
    from deepapps.runtime.checkpoint import read_metadata

    head = read_metadata(BUNDLED)["yaml"]["head"]
    evil_layer = _safetensors_with(
        tmp_path, "layer.safetensors", head=[*head[:-1], [-1, 1, "torch_load", ["x.pt"]]]
    )
    with pytest.raises(CheckpointError, match="torch_load.*not a known network layer"):
        Detector(evil_layer, device="cpu")
    ok = _safetensors_with(tmp_path, "ok.safetensors", activation="nn.SiLU()")
    assert ultra.load_safetensors(ok).names[0] == "duck"


def test_crafted_architecture_yaml_is_refused(tmp_path):
    import yaml

    marker = tmp_path / "pwned.txt"
    cfg = yaml.safe_load((Path(ultra.__file__).parent / "yolo11n-half.yaml").read_text())
    cfg["activation"] = f"open({str(marker)!r}, 'w')"
    path = tmp_path / "yolo11n-evil.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(CheckpointError, match="activation"):
        deepapps.load("object-detection", str(path), device="cpu", cache=False)
    assert not marker.exists()


def test_unknown_weight_formats_and_hub_names_are_refused(tmp_path):
    other = tmp_path / "model.engine"
    other.write_bytes(b"\0" * 16)
    with pytest.raises(ModelNotAvailableError, match=r"\.engine is not a detection weights format"):
        Detector(other, device="cpu")
    with pytest.raises(ModelNotAvailableError, match="local weights only"):
        Detector("someone/yolo-weights", device="cpu")


def test_hub_weight_names_fail_at_once_without_touching_the_network(monkeypatch):
    """Offline, a name ultralytics would download (yolo11n.pt) fails fast with a deepapps error."""
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise OSError("network used in a test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    import ultralytics.utils as uu

    ultra.setup()
    assert uu.AUTOINSTALL is False and uu.ONLINE is False  # no pip installs, no online checks
    t0 = time.perf_counter()
    for name in ("yolo11n.pt", "https://example.com/yolo11n.pt"):
        with pytest.raises(ModelNotAvailableError, match="does not exist"):
            deepapps.load("object-detection", name, device="cpu", cache=False)
    assert time.perf_counter() - t0 < 2.0 and attempts == []


def test_video_limits(tmp_path, monkeypatch):
    clip = write_video(tmp_path / "clip.mp4", [np.zeros((64, 96, 3), np.uint8)] * 3, fps=3)
    with pytest.raises(InputError, match="stride must be .* at least 1"):
        next(read_frames(clip, stride=0))  # was ZeroDivisionError
    monkeypatch.setenv("DEEPAPPS_MAX_PIXELS", "5000")
    with pytest.raises(InputError, match="96x64 .*over the .* limit"):
        next(read_frames(clip))
    monkeypatch.delenv("DEEPAPPS_MAX_PIXELS")
    assert len(list(read_frames(clip, stride=2))) == 2


def test_declared_ranges_are_checked_before_any_work(tmp_path):
    det = deepapps.load("object-detection", device="cpu")
    image = np.zeros((32, 32, 3), np.uint8)
    for options, words in [
        ({"stride": 0}, "--stride: 0 is below the minimum 1"),
        ({"imgsz": 100_000}, "--imgsz: 100000 is above the maximum 4096"),
        ({"conf": 1.5}, "--conf: 1.5 is above the maximum 1"),
        ({"max_det": 0}, "--max-det: 0 is below the minimum 1"),
        ({"export": "pickle"}, "--export: 'pickle' is not one of"),
    ]:
        with pytest.raises(InputError, match=words):
            det(image, **options)
    data = json.loads(det(image).to_json())
    assert data["width"] == 32 and data["source"] == "<array 32x32x3>"
