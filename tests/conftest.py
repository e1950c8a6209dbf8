"""Test-wide settings: an isolated deepapps home, no progress bars, offline hubs."""

from __future__ import annotations

import os
import tempfile


def pytest_configure(config):
    # before anything imports deepapps.runtime.home
    if "DEEPAPPS_TEST_KEEP_HOME" not in os.environ:
        os.environ["DEEPAPPS_HOME"] = tempfile.mkdtemp(prefix="deepapps-test-home-")
    os.environ.setdefault("DEEPAPPS_NO_PROGRESS", "1")
    from deepapps.runtime.offline import apply_offline_policy

    apply_offline_policy()  # the same policy the CLI and deepapps.load apply: no hub, no pip installs
    os.environ.setdefault("MPLBACKEND", "Agg")


# --- in CI a missing dependency fails; it never skips quietly ---------------------------------------
import pytest  # noqa: E402

# skips that depend on the machine's hardware, not on an install step, stay skips in CI
HARDWARE_SKIP_PREFIX = "needs a GPU"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _skip_reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip(report, where: str) -> None:
    reason = _skip_reason(report.longrepr)
    if HARDWARE_SKIP_PREFIX in reason or hasattr(report, "wasxfail"):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{where} was skipped in CI ({reason}); CI installs every dependency (.ci/run), "
        "so a skip here means a missing install step"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.skipped:
        _fail_skip(report, item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if _in_ci() and report.outcome == "skipped":
        _fail_skip(report, collector.nodeid)


# --- keep the __main__ module intact between tests ------------------------------------------------
# streamlit's AppTest runs a page as a script and can leave ``__main__`` pointing at its temporary
# file; "spawn" subprocesses (Go self-play workers, DDP ranks) re-import ``__main__`` from that path
# and die. Restore the module and its file attributes after every test.
@pytest.fixture(autouse=True)
def _keep_main_module():
    import sys

    main = sys.modules.get("__main__")
    saved = {k: getattr(main, k) for k in ("__file__", "__spec__") if main is not None and hasattr(main, k)}
    yield
    sys.modules["__main__"] = main
    for key, value in saved.items():
        setattr(main, key, value)
    for key in ("__file__", "__spec__"):
        if key not in saved and main is not None and hasattr(main, key):
            delattr(main, key)
