"""The model and provider variables of the installed claude, read from its code: each is either managed
by `ccs run` (claude.MANAGED) or left alone on purpose (claude.LEFT_ALONE), so a new one in a new Claude
Code fails here first. Names are read where the code uses them ("NAME", `env.NAME`, `{NAME:`), never
through its minified identifiers, which change with every release.

CI runs these with the newest claude (2.1.332) and again with the oldest supported (2.1.329), named by
CCS_TEST_CLAUDE; elsewhere they look for claude on PATH and skip without it (CI fails instead of skipping).
"""

from __future__ import annotations

import os
import re
import shutil
from functools import cache
from pathlib import Path

import pytest

from ccswitch import claude
from conftest import ccs, write_config
from fakes import FakeServer, Reply, anthropic_text_stream

CLAUDE = os.environ.get("CCS_TEST_CLAUDE") or shutil.which("claude")
if not CLAUDE and os.environ.get("CI"):
    raise RuntimeError("CI must provide the real claude CLI (CCS_TEST_CLAUDE)")
pytestmark = [pytest.mark.claude, pytest.mark.skipif(not CLAUDE, reason="real claude CLI not installed")]

IDENTIFIER = re.compile(rb"[A-Za-z0-9_$(]")  # a byte that would make the name part of a longer word or a call
STRINGS = re.compile(rb'\[(?:"[A-Z][A-Z0-9_]*",)*"[A-Z][A-Z0-9_]*"\]')  # ["A","B"]: a list of variable names


@cache
def code() -> bytes:
    """claude's code: the executable itself, or for npm's launcher script the platform binary beside it."""
    program = Path(CLAUDE).resolve()
    for candidate in (program, *sorted(program.parents[2].glob("claude-code-*/claude*"))):
        text = candidate.read_bytes()
        if b'"ANTHROPIC_MODEL"' in text:
            return text
    pytest.fail(f"no Claude Code variables in {program} or a platform package beside it")


@cache
def variables() -> frozenset[str]:
    """Every ANTHROPIC_* and CLAUDE_CODE_* name the code uses: quoted, read as a property, or an object's key
    (not a piece of a longer word, nor of the string tables that sit beside the code)."""
    text, names = code(), set()
    for prefix in (b"ANTHROPIC_", b"CLAUDE_CODE_"):
        for found in re.finditer(prefix + rb"[A-Z0-9_]*[A-Z0-9]", text):
            before, after = text[found.start() - 1:found.start()], text[found.end():found.end() + 1]
            if (before in (b'"', b"'", b"`") and after == before or before in (b"{", b",") and after == b":"
                    or before == b"." and not IDENTIFIER.match(after)):
                names.add(found.group().decode())
    return frozenset(names)


def lists_holding(name: str) -> list[list[str]]:
    """The code's literal lists of variable names that hold `name`."""
    text, key, lists, at = code(), f'"{name}"'.encode(), [], 0
    while (at := text.find(key, at) + 1) > 0:
        start = text.rfind(b"[", max(0, at - 20000), at)
        if start != -1 and (found := STRINGS.match(text, start)) and found.end() > at:
            lists.append(re.findall(r'"([A-Z0-9_]+)"', found.group().decode()))
    return lists


def model_list() -> set[str]:
    """claude's own list of its model variables: a list with the opus tier's variable, mostly *_MODEL* names
    (it also holds the notes claude keeps on tier values it wrote itself)."""
    return {name for names in lists_holding("ANTHROPIC_DEFAULT_OPUS_MODEL")
            if sum("MODEL" in n for n in names) * 2 >= len(names) for name in names}


def provider_switches() -> set[str]:
    """claude's lists of the switches that choose a provider: with Bedrock's, mostly CLAUDE_CODE_USE_* names
    (one also holds each cloud's project or resource variable)."""
    return {name for names in lists_holding("CLAUDE_CODE_USE_BEDROCK")
            if sum(n.startswith("CLAUDE_CODE_USE_") for n in names) * 2 >= len(names)
            for name in names if name.startswith("CLAUDE_CODE_USE_")}


LEFT_ALONE = {name for names in claude.LEFT_ALONE.values() for name in names}


def test_the_variables_are_found_where_claude_uses_them():
    assert {"ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_FABLE_MODEL_NAME", "CLAUDE_CODE_SUBAGENT_MODEL_FORCE",
            "CLAUDE_CODE_USE_MANTLE", "ANTHROPIC_CUSTOM_MODEL_OPTION_DESCRIPTION"} <= variables()
    assert not {name for name in variables() if re.search(r"CAPABILITIES\d", name)}  # the string tables' spellings
    assert {"ANTHROPIC_MODEL", "ANTHROPIC_DEFAULT_MODEL", "CLAUDE_CODE_WORKFLOW_SUBAGENT_MODEL"} <= model_list()
    assert {"CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_GATEWAY"} <= provider_switches()


def test_every_model_and_provider_variable_of_claude_is_managed_or_left_alone_on_purpose():
    known = {name for name in variables() if "MODEL" in name or name.startswith("CLAUDE_CODE_USE_")}
    unclassified = (known | model_list() | provider_switches()) - set(claude.MANAGED) - LEFT_ALONE
    assert sorted(unclassified) == [], "claude knows variables that ccs neither manages nor leaves alone on purpose"
    assert not set(claude.MANAGED) & LEFT_ALONE


def test_every_provider_switch_is_managed():
    """One left in the shell sends claude to a cloud instead of the profile's provider."""
    assert sorted(provider_switches() - set(claude.MANAGED)) == []


def real_claude_in(tmp_path, monkeypatch, shell: dict) -> Path:
    """The real claude first on PATH, nothing sent beyond this machine, the `shell` variables set (AWS's
    instance metadata never asked); returns a project directory to run it in."""
    bin_dir = tmp_path / "claude-bin"
    bin_dir.mkdir()
    (bin_dir / "claude").symlink_to(Path(CLAUDE).resolve())
    project = Path.home() / "project"
    project.mkdir()
    for var, value in {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "DISABLE_TELEMETRY": "1",
                       "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "NO_PROXY": "127.0.0.1,localhost",
                       "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",  # nothing leaves
                       "AWS_EC2_METADATA_DISABLED": "true", **shell}.items():
        monkeypatch.setenv(var, value)
    return project


def pong(seen):
    """A provider's answer to any Messages request, naming the model it was asked for."""
    if seen.method == "POST" and "/v1/messages" in seen.path:
        return anthropic_text_stream("pong", seen.body["model"])
    return Reply(200, {"Content-Length": "0"})


def test_claude_asks_the_profiles_provider_for_its_models_whatever_the_shell_says(tmp_path, monkeypatch, no_keyring):
    """The real claude, with a shell set up for AWS (Mantle, which it reaches without signing in here) and for
    Anthropic's models: every request goes to the profile's provider, naming the profile's models."""
    provider, mantle = FakeServer(pong), FakeServer(pong)
    project = real_claude_in(tmp_path, monkeypatch, {
        "CLAUDE_CODE_USE_MANTLE": "1", "CLAUDE_CODE_SKIP_MANTLE_AUTH": "1", "ANTHROPIC_BEDROCK_MANTLE_BASE_URL": mantle.url,
        "ANTHROPIC_DEFAULT_FABLE_MODEL": "claude-fable-5-2", "ANTHROPIC_DEFAULT_MODEL": "claude-opus-5-5",
        "CLAUDE_CODE_WORKFLOW_SUBAGENT_MODEL": "claude-sonnet-5-5"})
    try:
        write_config(f"""
            version = 1
            [profiles.glm]
            preset = "zai"
            base_url = "{provider.url}"
            models = {{ opus = "glm-big" }}
        """)
        assert ccs("key", "set", "glm", "--stdin", input="sk-glm-profile-key").returncode == 0
        asked = {}
        for pick in ("fable", "default", "haiku"):
            before = len(provider.requests)
            result = ccs("run", "glm", "--", "claude", "--print", "--model", pick, "ping", cwd=project, timeout=180)
            assert result.returncode == 0, result.stderr
            posts = [r for r in provider.requests[before:] if r.method == "POST"]
            asked[pick] = {r.body["model"] for r in posts}
            assert not any("context-1m" in r.headers.get("anthropic-beta", "") for r in posts)
        assert asked == {"fable": {"glm-big"}, "default": {"glm-5.4"}, "haiku": {"glm-5.3-flash"}}
        assert not mantle.requests
    finally:
        provider.close()
        mantle.close()


def test_every_variable_a_cloud_profile_sets_is_one_claude_reads():
    text = code()
    for cloud in claude.CLOUDS.values():
        for name in (cloud.switch, cloud.endpoint, cloud.unsigned, *(field.var for field in cloud.fields.values())):
            assert name in variables() or f'"{name}"'.encode() in text or f".{name}".encode() in text, name


def test_each_clouds_endpoint_switch_and_project_are_managed():
    """claude's table of endpoints (each with the switch that selects it and the variables beside it) and its
    lists of the cloud switches (one with each cloud's project, resource or region): one left in a shell sends
    claude to a cloud, or to another project, instead of the profile's provider."""
    rows = re.findall(rb'\{endpoint:"([A-Z_]+)",selection:"(CLAUDE_CODE_USE_[A-Z_]+)",companions:\[([^\]]*)\]\}', code())
    assert len(rows) >= 6
    named = {name.decode() for endpoint, selection, companions in rows
             for name in (endpoint, selection, *re.findall(rb'"([A-Z_]+)"', companions))}
    listed = {name for names in lists_holding("ANTHROPIC_VERTEX_PROJECT_ID") if "CLAUDE_CODE_USE_VERTEX" in names
              for name in names}
    assert {"ANTHROPIC_VERTEX_PROJECT_ID", "ANTHROPIC_FOUNDRY_RESOURCE", "CLOUD_ML_REGION"} <= listed
    assert sorted((named | listed) - set(claude.MANAGED)) == []


def test_a_cloud_profile_sends_the_real_claude_to_its_cloud_with_its_models(tmp_path, monkeypatch, no_keyring):
    """A Mantle profile (its endpoint a fake here, signing off as for a gateway that signs), from a shell set up
    for Bedrock and Vertex: the real claude asks the profile's endpoint, for the preset's Mantle model ids."""
    mantle = FakeServer(pong)
    project = real_claude_in(tmp_path, monkeypatch, {"CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDE_CODE_USE_VERTEX": "1",
                                                     "CLOUD_ML_REGION": "global", "ANTHROPIC_VERTEX_PROJECT_ID": "stale"})
    try:
        write_config(f"""
            version = 1
            [profiles.aws]
            preset = "mantle"
            base_url = "{mantle.url}/anthropic"
            env = {{ CLAUDE_CODE_SKIP_MANTLE_AUTH = "1" }}
        """)
        result = ccs("run", "aws", "--", "claude", "--print", "--model", "haiku", "ping", cwd=project, timeout=180)
        assert result.returncode == 0, result.stderr
        posts = [r for r in mantle.requests if r.method == "POST"]
        assert posts and {r.body["model"] for r in posts} <= {"anthropic.claude-haiku-5-5", "anthropic.claude-sonnet-5-5"}
        assert "anthropic.claude-haiku-5-5" in {r.body["model"] for r in posts}
    finally:
        mantle.close()
