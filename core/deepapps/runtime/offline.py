"""The offline policy: one place that keeps every model library off the network.

deepapps runs its defaults from files on this machine. Left alone, the libraries it drives
reach out at run time: transformers retries a hub lookup for about 46 s, ultralytics probes
DNS, downloads assets and may ``pip install`` a missing package in the middle of an export,
and ``torch.hub`` fetches code and weights from GitHub. :func:`apply_offline_policy` turns all
of that off, once per process, before those libraries are imported; the core calls it before a
plugin's heavy code runs (``deepapps.load``, the CLI verbs), and plugins may call it too.

What it sets, unless you set the variable yourself (your value wins):

- Hugging Face: ``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``,
  ``HF_HUB_DISABLE_TELEMETRY=1``: a hub id fails at once instead of retrying;
- ultralytics: ``YOLO_OFFLINE=1`` and ``YOLO_AUTOINSTALL=False``: no DNS probe, no downloads,
  no run-time ``pip install``;
- torch hub: every URL fetch of ``torch.hub`` (``load`` from GitHub,
  ``load_state_dict_from_url``, ``download_url_to_file``) raises :class:`OfflineError`; a repo
  or file already in the torch hub cache still loads.

A library already imported when the policy is applied is switched off too (its module flags
are updated), so the order of imports does not matter.

**To use the hubs**, set ``DEEPAPPS_ONLINE=1`` before starting: the policy then changes nothing.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading
from typing import Any

from ..errors import ModelNotAvailableError

ONLINE_ENV = "DEEPAPPS_ONLINE"

OFFLINE_ENVIRONMENT: dict[str, str] = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "YOLO_OFFLINE": "1",
    "YOLO_AUTOINSTALL": "False",
}

_TRUE = {"1", "true", "yes", "on", "y", "t"}
_lock = threading.Lock()
_hook_installed = False


class OfflineError(ModelNotAvailableError, ConnectionError):
    """A library tried to download while deepapps runs offline (also a ``ConnectionError``)."""


def online_allowed() -> bool:
    """True when the user opted into network access with ``DEEPAPPS_ONLINE=1``."""
    return os.environ.get(ONLINE_ENV, "").strip().lower() in _TRUE


def offline_hint() -> str:
    """The sentence to append to an error caused by the offline policy."""
    return f"deepapps keeps model hubs offline; set {ONLINE_ENV}=1 (and have a network) to download"


def apply_offline_policy() -> bool:
    """Keep HF, ultralytics and torch hub off the network; True when the policy is in force.

    Idempotent and cheap (no heavy import): call it before anything imports those libraries.
    Does nothing when ``DEEPAPPS_ONLINE=1``.
    """
    if online_allowed():
        return False
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    _patch_imported_libraries()
    _install_torch_hub_guard()
    return True


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUE


def _patch_imported_libraries() -> None:
    """Bring libraries imported before the policy in line with the environment it set."""
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and (_env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE")):
        constants.HF_HUB_OFFLINE = True
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None and _env_true("HF_DATASETS_OFFLINE"):
        datasets_config.HF_DATASETS_OFFLINE = True
    autoinstall = _env_true("YOLO_AUTOINSTALL")
    offline = _env_true("YOLO_OFFLINE")
    # ultralytics modules copy these flags at import (`from ultralytics.utils import ONLINE`)
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "ultralytics" or name.startswith("ultralytics.")):
            continue
        if getattr(module, "AUTOINSTALL", None) is True and not autoinstall:
            module.AUTOINSTALL = False
        if getattr(module, "ONLINE", None) is True and offline:
            module.ONLINE = False
    hub = sys.modules.get("torch.hub")
    if hub is not None:
        _guard_torch_hub(hub)


def _install_torch_hub_guard() -> None:
    global _hook_installed
    with _lock:
        if _hook_installed:
            return
        sys.meta_path.insert(0, _PatchAfterImport("torch.hub", _guard_torch_hub))
        _hook_installed = True


def _guard_torch_hub(hub: Any) -> None:
    """Replace the one function ``torch.hub`` fetches URLs with by a guard (once)."""
    real = getattr(hub, "urlopen", None)
    if real is None or getattr(real, "_deepapps_guard", False):
        return

    def urlopen(url: Any, *args: Any, **kwargs: Any) -> Any:
        if online_allowed():
            return real(url, *args, **kwargs)
        target = getattr(url, "full_url", url)
        raise OfflineError(f"torch.hub tried to download {target}; {offline_hint()}")

    urlopen._deepapps_guard = True  # type: ignore[attr-defined]
    hub.urlopen = urlopen


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Runs ``patch(module)`` right after ``module_name`` is first imported, without importing it."""

    def __init__(self, module_name: str, patch: Any) -> None:
        self.module_name = module_name
        self.patch = patch

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != self.module_name:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, self.patch)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(self, inner: Any, patch: Any) -> None:
        self.inner = inner
        self.patch = patch

    def create_module(self, spec: Any) -> Any:
        return self.inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.inner.exec_module(module)
        self.patch(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename... for inspect and tracebacks
        return getattr(self.inner, name)
