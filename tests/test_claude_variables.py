"""The model and provider variables of the installed claude, read from its binary: each is either
managed by `ccs run` or deliberately left alone. A new one in a new Claude Code fails here first."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from ccswitch import launch
from ccswitch.profiles import resolve

CLAUDE = os.environ.get("CCS_TEST_CLAUDE") or shutil.which("claude")
NAMES = re.compile(rb"\b(?:ANTHROPIC_(?:DEFAULT_[A-Z]+_MODEL\w*|CUSTOM_MODEL_OPTION\w*|MODEL|SMALL_FAST_MODEL\w*)"
                   rb"|CLAUDE_CODE_USE_[A-Z_]+|CLAUDE_CODE_\w*_MODELS?(?:_[A-Z]+)*)\b")
NOT_SWITCHES = {"CLAUDE_CODE_USE_"}  # a prefix the binary builds names from


def binary() -> Path:
    """claude's npm package ships a launcher script and the real executable beside it."""
    package = Path(CLAUDE).resolve().parent
    candidates = sorted(package.rglob("claude*"), key=lambda p: p.stat().st_size if p.is_file() else 0)
    return candidates[-1]


@pytest.mark.skipif(not CLAUDE, reason="real claude CLI not installed")
def test_every_model_and_provider_variable_of_claude_is_managed_or_left_alone_on_purpose():
    found = {m.decode() for m in NAMES.findall(binary().read_bytes())} - NOT_SWITCHES
    found = {name for name in found if not re.search(r"\d$", name)}  # minifier suffixes (..._CAPABILITIES4)
    assert {"ANTHROPIC_DEFAULT_FABLE_MODEL", "CLAUDE_CODE_USE_MANTLE", "ANTHROPIC_CUSTOM_MODEL_OPTION"} <= found
    known = set(launch.MANAGED) | {name for names in launch.LEFT_ALONE.values() for name in names}
    assert sorted(found - known) == [], "claude has variables ccs neither manages nor leaves alone on purpose"


def test_a_profile_with_models_maps_every_tier_and_labels_it_for_model():
    env = launch.model_env(resolve("glm", {"preset": "zai"}))
    assert env["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "glm-4.6"  # never claude-fable-5-2 to Z.ai
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "glm-4.5-air"
    assert env["ANTHROPIC_DEFAULT_SONNET_MODEL_NAME"] == "glm-4.6"
    assert "Z.ai" in env["ANTHROPIC_DEFAULT_SONNET_MODEL_DESCRIPTION"]
    local = launch.model_env(resolve("local", {"preset": "ollama", "model": "qwen3-coder"}))
    assert {local[launch.TIER_VARS[t]] for t in ("opus", "sonnet", "haiku", "fable")} == {"qwen3-coder"}
    assert launch.model_env(resolve("a", {"preset": "anthropic"})) == {}  # Anthropic's own names are right
    mix = launch.model_env(resolve("mix", {"models": {"opus": "glm,glm-4.6", "sonnet": "gpt,gpt-5"}}))
    assert mix["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "glm,glm-4.6"
    assert mix["ANTHROPIC_DEFAULT_OPUS_MODEL_DESCRIPTION"] == "glm-4.6 via profile glm (routed by ccs)"
    custom = launch.model_env(resolve("g", {"preset": "zai", "model": "glm-4.5"}))
    assert custom["ANTHROPIC_CUSTOM_MODEL_OPTION"] == "glm-4.5"  # not a tier's: one more /model row


def test_new_switches_and_model_variables_do_not_leak_into_a_launch(tmp_path):
    parent = {"PATH": os.defpath, "CLAUDE_CODE_USE_MANTLE": "1", "CLAUDE_CODE_USE_ANTHROPIC_AWS": "1",
              "ANTHROPIC_DEFAULT_FABLE_MODEL": "claude-fable-5-2", "CLAUDE_CODE_AUTO_MODE_MODEL": "x",
              "ANTHROPIC_CUSTOM_MODEL_OPTION": "stale", "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}
    plan = launch.plan(resolve("a", {"preset": "anthropic"}), "sk-a", ["claude"], parent, tmp_path)
    assert not {"CLAUDE_CODE_USE_MANTLE", "CLAUDE_CODE_USE_ANTHROPIC_AWS", "ANTHROPIC_DEFAULT_FABLE_MODEL",
                "CLAUDE_CODE_AUTO_MODE_MODEL", "ANTHROPIC_CUSTOM_MODEL_OPTION"} & set(plan.env)
    assert plan.env["CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY"] == "1"  # left alone on purpose


def test_behind_the_proxy_a_profile_env_never_replaces_the_session_token():
    from ccswitch.proxy.lifecycle import Endpoint

    profile = resolve("local", {"preset": "ollama", "fallback": ["x,y"]})  # env ANTHROPIC_AUTH_TOKEN = "ollama"
    env = launch.profile_env(profile, None, Endpoint("http://127.0.0.1:9", "ccs-session"))
    assert env["ANTHROPIC_AUTH_TOKEN"] == "ccs-session" and env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:9"
    assert launch.profile_env(resolve("local", {"preset": "ollama"}), None)["ANTHROPIC_AUTH_TOKEN"] == "ollama"
