"""Plugin loading: isolation of broken plugins, strict mode, selection, duplicates, check_pending."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import deepapps
from deepapps import DuplicateNameError, ModelSpec, TaskSpec, hookimpl


def _fake_site(tmp_path: Path, name: str, module_code: str) -> Path:
    """A folder holding a module plus a dist-info with a `deepapps` entry point: a real installed plugin."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / f"{name}.py").write_text(textwrap.dedent(module_code))
    info = site / f"{name}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[deepapps]\n{name} = {name}\n")
    return site


def _run_cli(args: list[str], site: Path | None = None, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    if site is not None:
        full_env["PYTHONPATH"] = str(site) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-m", "deepapps.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


BROKEN = """
raise ImportError("this plugin is broken on purpose")
"""

GOOD = """
from deepapps import hookimpl, TaskSpec, ModelSpec

@hookimpl
def register_tasks(register):
    register(TaskSpec(name="shout", title="Shout", domain="text", runner="shouty:make", default_model="caps"))

@hookimpl
def register_models(register):
    register(ModelSpec(name="caps", task="shout", source="builtin:"))

def make(model, device, **options):
    raise RuntimeError("not needed")
"""


def test_broken_plugin_is_recorded_and_skipped(tmp_path):
    site = _fake_site(tmp_path, "brokenplug", BROKEN)
    out = _run_cli(["plugins", "--json"], site)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["brokenplug"]["status"] == "failed"
    assert "broken on purpose" in rows["brokenplug"]["error"]
    assert rows["vision"]["status"] == "ok"  # the host and other plugins keep working
    tasks = _run_cli(["tasks", "--json"], site)
    assert tasks.returncode == 0


def test_strict_mode_makes_a_broken_plugin_fatal(tmp_path):
    site = _fake_site(tmp_path, "brokenplug", BROKEN)
    out = _run_cli(["plugins", "--json"], site, DEEPAPPS_STRICT_PLUGINS="1")
    assert out.returncode != 0
    assert "brokenplug" in out.stderr and "broken on purpose" in out.stderr


def test_load_plugins_selects_by_name(tmp_path):
    site = _fake_site(tmp_path, "shouty", GOOD)
    out = _run_cli(["plugins", "--json"], site, DEEPAPPS_LOAD_PLUGINS="shouty,games")
    assert sorted(r["name"] for r in json.loads(out.stdout)) == ["games", "shouty"]
    tasks = json.loads(_run_cli(["tasks", "--json"], site, DEEPAPPS_LOAD_PLUGINS="shouty").stdout)
    assert [t["name"] for t in tasks] == ["shout"]
    none = _run_cli(["plugins", "--json"], site, DEEPAPPS_LOAD_PLUGINS="")
    assert json.loads(none.stdout) == []


def test_third_party_entry_point_is_discovered(tmp_path):
    site = _fake_site(tmp_path, "shouty", GOOD)
    rows = {r["name"]: r for r in json.loads(_run_cli(["plugins", "--json"], site).stdout)}
    assert rows["shouty"]["status"] == "ok"
    assert rows["shouty"]["version"] == "0.0.1"
    assert rows["shouty"]["hooks"] == ["register_models", "register_tasks"]


class _DupA:
    @hookimpl
    def register_tasks(self, register):
        register(TaskSpec(name="same-name", title="A", domain="x", runner=lambda m, d, p: None))


class _DupB:
    @hookimpl
    def register_tasks(self, register):
        register(TaskSpec(name="same-name", title="B", domain="x", runner=lambda m, d, p: None))


def test_duplicate_names_raise_naming_both_plugins():
    deepapps.register_plugin(_DupA(), "dup-a")
    try:
        with pytest.raises(DuplicateNameError) as err:
            deepapps.register_plugin(_DupB(), "dup-b")
            deepapps.registry.tasks()
        assert "dup-a" in str(err.value) and "dup-b" in str(err.value)
    finally:
        deepapps.unregister_plugin("dup-b")
        deepapps.unregister_plugin("dup-a")
    deepapps.registry.tasks()  # healthy again


class _Misspelled:
    @hookimpl
    def register_task(self, register):  # missing the "s"
        pass


def test_misspelled_hook_is_caught_by_check_pending():
    with pytest.raises(deepapps.PluginError, match="register_task"):
        deepapps.register_plugin(_Misspelled(), "misspelled")
    deepapps.unregister_plugin("misspelled")
    assert all(p.name != "misspelled" for p in deepapps.get_plugins())


class _RaisesInHook:
    @hookimpl
    def register_models(self, register):
        register(ModelSpec(name="half-registered", task="word-count", source="builtin:"))
        raise RuntimeError("hook exploded")


def test_plugin_raising_in_a_hook_contributes_nothing():
    deepapps.register_plugin(_RaisesInHook(), "raises")
    try:
        assert not deepapps.registry.has_model("half-registered")
        info = {p.name: p for p in deepapps.get_plugins()}["raises"]
        assert info.status == "failed" and "hook exploded" in info.error
    finally:
        deepapps.unregister_plugin("raises")


def test_unknown_names_list_valid_ones_closest_first(boring_plugin):
    with pytest.raises(deepapps.UnknownNameError) as err:
        deepapps.load("word-cout")
    assert str(err.value).startswith("unknown task 'word-cout' (did you mean 'word-count'?). Valid tasks: ")
    with pytest.raises(deepapps.UnknownNameError, match="did you mean 'whitespace'"):
        deepapps.load("word-count", model="whitespce")
    with pytest.raises(deepapps.UnknownNameError, match="tiny-words"):
        deepapps.registry.dataset("tiny-wrds")


def test_specs_validate_names():
    with pytest.raises(deepapps.PluginError, match="kebab-case"):
        TaskSpec(name="Bad_Name", title="", domain="", runner="x:y")
    with pytest.raises(deepapps.PluginError, match="source"):
        ModelSpec(name="m", task="t", source="ftp://x")
