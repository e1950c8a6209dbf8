"""What keeps `deepapps run object-detection IMAGE` as quick to start as `yolo predict`.

The side-by-side timing itself is a benchmark (`deepapps bench object-detection`, or
`python -m deepapps_vision.detection.coldstart`); these tests pin the mechanisms behind it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from deepapps_vision.detection import ultra
from deepapps_vision.detection.coldstart import commands, summarise

BUNDLED = Path(ultra.__file__).parent / "yolo11n-half-scenes.safetensors"


def test_skeleton_build_gives_the_network_ultralytics_builds():
    """Convolutions that only report their output shape while building change nothing in the network."""
    from deepapps.runtime.checkpoint import load_checkpoint

    fast = ultra.load_safetensors(BUNDLED)
    tensors, meta = load_checkpoint(BUNDLED)
    plain = ultra.build(meta["yaml"], "yolo11n.yaml")  # ultralytics' own build, stride forward pass included
    plain.model.load_state_dict({k: v.float() for k, v in tensors.items()})
    plain.model.float().eval()
    a, b = fast.model.state_dict(), plain.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert fast.model.stride.tolist() == plain.model.stride.tolist() == [8.0, 16.0, 32.0]
    x = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        torch.testing.assert_close(fast.model(x)[0], plain.model(x)[0])


def test_one_image_needs_neither_torchvision_nor_dynamo():
    """ultralytics' warm-up imports torchvision (and with it torch._dynamo): seconds a single run skips."""
    code = (
        "import sys, numpy as np, deepapps\n"
        "r = deepapps.load('object-detection', device='cpu')(np.zeros((64, 64, 3), np.uint8))\n"
        "print(r.width, 'torchvision' in sys.modules, 'torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["64", "False", "False"]


def test_coldstart_commands_and_summary(tmp_path):
    cmds = commands(tmp_path / "bus.jpg", tmp_path / "same.pt", None)
    assert cmds["deepapps"][1:] == ["run", "object-detection", str(tmp_path / "bus.jpg"), "--device", "cpu"]
    assert cmds["yolo"][1:3] == ["predict", f"model={tmp_path / 'same.pt'}"] and "save=False" in cmds["yolo"]
    assert commands(tmp_path / "a.jpg", tmp_path / "b.pt", "x.pt", trust_weights=True)["deepapps"][-3:] == [
        "--model",
        "x.pt",
        "--trust-weights",
    ]
    times = {
        "deepapps": [(10.0, 4.0), (12.0, 5.0), (11.0, 4.5)],
        "yolo": [(10.0, 5.0), (10.0, 5.0), (10.0, 5.0)],
    }
    s = summarise(times, cmds, tmp_path / "bus.jpg")
    assert (s["deepapps_wall_s"], s["yolo_wall_s"], s["wall_ratio"]) == (11.0, 10.0, 1.1)
    assert (s["deepapps_cpu_s"], s["cpu_ratio"], s["runs"]) == (4.5, 0.9, 3)
    assert np.isclose(s["target_ratio"], 1.2)
