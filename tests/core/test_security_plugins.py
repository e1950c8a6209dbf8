"""A broken or hostile plugin cannot take the host down, steal a name, or half-register."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

import deepapps
from deepapps import DuplicateNameError, ModelSpec, PluginError, TaskSpec, hookimpl
from deepapps.plugins import add_commands, is_first_party

PROBE = """
import json, deepapps
from deepapps import registry
rows = {p.name: p.to_dict() for p in deepapps.get_plugins()}
tasks = {t.name: t.plugin for t in registry.tasks()}
models = {m.name: m.plugin for m in registry.models()}
print(json.dumps({"plugins": rows, "tasks": tasks, "models": models}))
"""


def _fake_site(
    tmp_path: Path, module: str, code: str, dist: str | None = None, ep_name: str | None = None
) -> Path:
    """An installed third-party distribution ``dist`` whose ``deepapps`` entry point loads ``module``."""
    dist = dist or module
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(code))
    info = site / f"{dist}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[deepapps]\n{ep_name or module} = {module}\n")
    return site


def _probe(site: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    full_env["PYTHONPATH"] = str(site) + os.pathsep + full_env.get("PYTHONPATH", "")
    return subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env=full_env, timeout=120
    )


def _state(site: Path) -> dict:
    out = _probe(site)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_system_exit_at_import_does_not_end_the_host(tmp_path):
    site = _fake_site(tmp_path, "exitplug", "import sys\nsys.exit('plugin quits the host')\n")
    state = _state(site)
    row = state["plugins"]["exitplug"]
    assert row["status"] == "failed" and "SystemExit" in row["error"] and "quits the host" in row["error"]
    assert state["tasks"]["object-detection"] == "vision"  # every other plugin still works


def test_system_exit_at_import_is_fatal_when_strict(tmp_path):
    site = _fake_site(tmp_path, "exitplug", "raise SystemExit(3)\n")
    out = _probe(site, DEEPAPPS_STRICT_PLUGINS="1")
    assert out.returncode != 0
    assert "exitplug" in out.stderr and "SystemExit" in out.stderr


WRONG_TYPE = """
from deepapps import hookimpl, ModelSpec, TaskSpec

@hookimpl
def register_tasks(register):
    register(TaskSpec(name="wrongtype-task", title="t", domain="x", runner="wrongtype:make"))

@hookimpl
def register_models(register):
    register({"name": "not-a-spec"})
"""


def test_a_wrong_type_fails_only_that_plugin_and_it_contributes_nothing(tmp_path):
    state = _state(_fake_site(tmp_path, "wrongtype", WRONG_TYPE))
    row = state["plugins"]["wrongtype"]
    assert row["status"] == "failed"
    assert "dict" in row["error"] and "register_models" in row["error"] and "ModelSpec" in row["error"]
    assert "wrongtype-task" not in state["tasks"]  # all or nothing: its valid task is dropped too
    assert state["tasks"]["chat"] == "nlp"


CLASHING = """
from deepapps import hookimpl, ModelSpec, TaskSpec

@hookimpl
def register_tasks(register):
    register(TaskSpec(name="object-detection", title="Mine", domain="x", runner="squatter:make"))

@hookimpl
def register_models(register):
    register(ModelSpec(name="squatter-model", task="object-detection", source="builtin:"))
"""


def test_first_party_plugin_keeps_a_clashing_name(tmp_path):
    # the name sorts before "vision", so claim order alone would have given it away
    state = _state(_fake_site(tmp_path, "aaa_squatter", CLASHING.replace("squatter:", "aaa_squatter:")))
    row = state["plugins"]["aaa_squatter"]
    assert row["status"] == "failed"
    assert (
        "'object-detection'" in row["error"] and "'vision'" in row["error"] and "aaa_squatter" in row["error"]
    )
    assert state["tasks"]["object-detection"] == "vision"
    assert "squatter-model" not in state["models"]
    assert state["plugins"]["vision"]["status"] == "ok"


def test_an_entry_point_cannot_take_a_first_party_plugin_name(tmp_path):
    code = "raise RuntimeError('must never be imported')\n"
    site = _fake_site(tmp_path, "impostor", code, dist="impostor-dist", ep_name="vision")
    state = _state(site)
    assert state["plugins"]["vision"]["status"] == "ok"
    assert state["plugins"]["vision"]["module"] == "deepapps_vision.plugin"
    impostor = state["plugins"]["vision (impostor-dist)"]
    assert impostor["status"] == "failed" and "already used by deepapps_vision.plugin" in impostor["error"]


def test_a_clash_is_fatal_when_strict(tmp_path):
    site = _fake_site(tmp_path, "squatter", CLASHING)
    out = _probe(site, DEEPAPPS_STRICT_PLUGINS="1")
    assert out.returncode != 0 and "DuplicateNameError" in out.stderr and "object-detection" in out.stderr


def test_first_party_means_the_deepapps_distribution_and_a_deepapps_module():
    assert is_first_party("deepapps", "deepapps_vision.plugin")
    assert not is_first_party("evil-dist", "deepapps_vision.plugin")
    assert not is_first_party("deepapps", "evil.plugin")


# in-process plugins ------------------------------------------------------------------------------
def _task(name: str, alias: tuple[str, ...] = ()) -> TaskSpec:
    return TaskSpec(name=name, title=name, domain="x", runner=lambda m, d: None, aliases=alias)


class _ExitsInHook:
    @hookimpl
    def register_tasks(self, register):
        register(_task("exits-task"))
        raise SystemExit("hook quits")


def test_system_exit_in_a_hook_fails_only_that_plugin():
    deepapps.register_plugin(_ExitsInHook(), "exits")
    try:
        names = [t.name for t in deepapps.registry.tasks()]
        assert "exits-task" not in names and "chat" in names
        row = {p.name: p for p in deepapps.get_plugins()}["exits"]
        assert row.status == "failed" and "SystemExit in register_tasks: hook quits" == row.error
    finally:
        deepapps.unregister_plugin("exits")


class _Keeper:
    @hookimpl
    def register_tasks(self, register):
        register(_task("keeper-task", alias=("kt",)))


class _AliasThief:
    @hookimpl
    def register_tasks(self, register):
        register(_task("thief-task"))
        register(_task("kt"))  # the keeper's alias, as a task name

    @hookimpl
    def register_models(self, register):
        register(ModelSpec(name="thief-model", task="thief-task", source="builtin:"))


def test_a_clash_between_third_parties_disables_the_later_one_and_the_rest_stays_usable():
    deepapps.register_plugin(_Keeper(), "keeper")
    try:
        with pytest.raises(DuplicateNameError, match="'keeper'.*'thief'"):
            deepapps.register_plugin(_AliasThief(), "thief")
        assert deepapps.registry.task("kt").name == "keeper-task"
        assert not deepapps.registry.has_model("thief-model")
        assert "thief-task" not in [t.name for t in deepapps.registry.tasks()]
        assert {p.name: p for p in deepapps.get_plugins()}["thief"].status == "failed"
    finally:
        deepapps.unregister_plugin("thief")
        deepapps.unregister_plugin("keeper")


class _Twice:
    @hookimpl
    def register_tasks(self, register):
        register(_task("twice-task"))
        register(_task("twice-task"))


def test_a_plugin_registering_a_name_twice_is_refused():
    with pytest.raises(DuplicateNameError, match="registers task name 'twice-task' twice"):
        deepapps.register_plugin(_Twice(), "twice")
    deepapps.unregister_plugin("twice")
    assert "twice-task" not in [t.name for t in deepapps.registry.tasks()]


class _WrongType:
    @hookimpl
    def register_datasets(self, register):
        register("tiny-words")


def test_register_plugin_refuses_a_wrong_type():
    with pytest.raises(PluginError, match="passed str to register_datasets; expected DatasetSpec"):
        deepapps.register_plugin(_WrongType(), "wrong")
    deepapps.unregister_plugin("wrong")


class _ReadsRegistry:
    @hookimpl
    def register_tasks(self, register):
        deepapps.registry.tasks()  # would recurse into the build that is running this hook


def test_a_hook_reading_the_registry_fails_cleanly():
    with pytest.raises(PluginError, match="hooks may only call register"):
        deepapps.register_plugin(_ReadsRegistry(), "reader")
    try:
        assert {p.name: p for p in deepapps.get_plugins()}["reader"].status == "failed"
        assert "chat" in [t.name for t in deepapps.registry.tasks()]
    finally:
        deepapps.unregister_plugin("reader")


class _KeepsRegister:
    saved = None

    @hookimpl
    def register_tasks(self, register):
        _KeepsRegister.saved = register


def test_register_cannot_be_called_after_the_hook_returned():
    deepapps.register_plugin(_KeepsRegister(), "keeps")
    try:
        deepapps.registry.tasks()
        with pytest.raises(PluginError, match="after register_tasks returned"):
            _KeepsRegister.saved(_task("late-task"))
        assert "late-task" not in [t.name for t in deepapps.registry.tasks()]
    finally:
        deepapps.unregister_plugin("keeps")


# commands ----------------------------------------------------------------------------------------
class _CommandThief:
    @hookimpl
    def register_commands(self, cli):
        @cli.command(name="thief-extra")
        def extra():
            """An extra command."""

        @cli.command(name="run")
        def run():
            """Replaces the core's run verb."""


class _CommandExits:
    @hookimpl
    def register_commands(self, cli):
        @cli.command(name="half-added")
        def half():
            """Added before the hook fails."""

        raise SystemExit("bye")


def _group() -> click.Group:
    group = click.Group()

    @group.command(name="run")
    def run():
        """The core verb."""

    return group


@pytest.mark.parametrize(("plugin", "name", "added", "reason"), [
    (_CommandThief, "cmd-thief", "thief-extra", "command 'run' already exists"),
    (_CommandExits, "cmd-exits", "half-added", "SystemExit in register_commands: bye"),
])  # fmt: skip
def test_a_failing_command_hook_adds_nothing_and_cannot_replace_a_verb(plugin, name, added, reason):
    group = _group()
    core_run = group.commands["run"]
    deepapps.register_plugin(plugin(), name)
    try:
        add_commands(group)
        assert group.commands["run"] is core_run
        assert added not in group.commands
        row = {p.name: p for p in deepapps.get_plugins()}[name]
        assert row.status == "failed" and reason in row.error
        assert name not in [p for p in deepapps.plugins.pm.list_name_plugin()]
    finally:
        deepapps.unregister_plugin(name)
