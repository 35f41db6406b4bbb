"""The real `claude` CLI (npm @anthropic-ai/claude-code) launched by `ccs run`, against fake providers.

CI installs claude 2.1.329 and sets CCS_TEST_CLAUDE; elsewhere these tests look for it on PATH and
skip without it (CI fails instead of skipping).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import ccs, write_config
from fakes import FakeServer, Reply, anthropic_text_stream

CLAUDE = os.environ.get("CCS_TEST_CLAUDE") or shutil.which("claude")
if not CLAUDE and os.environ.get("CI"):
    raise RuntimeError("CI must provide the real claude CLI (CCS_TEST_CLAUDE)")
pytestmark = [pytest.mark.claude, pytest.mark.skipif(not CLAUDE, reason="real claude CLI not installed")]


@pytest.fixture
def claude_path(tmp_path, monkeypatch):
    """Put the real claude first on PATH, with a quiet, offline environment."""
    bin_dir = tmp_path / "claude-bin"
    bin_dir.mkdir()
    (bin_dir / "claude").symlink_to(Path(CLAUDE).resolve())
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    (Path.home() / "project").mkdir()
    return Path.home() / "project"


def test_native_profile_reaches_the_provider_despite_a_stale_settings_file(claude_path, no_keyring):
    def script(seen):
        if seen.method == "POST" and seen.path.startswith("/v1/messages"):
            return anthropic_text_stream("pong from the fake provider", seen.body["model"])
        return Reply(200, {"Content-Length": "0"})

    provider = FakeServer(script)
    stale = FakeServer(lambda seen: Reply(500, {"Content-Length": "0"}))
    try:
        write_config(f"""
            version = 1
            [profiles.fake]
            base_url = "{provider.url}"
            auth = "bearer"
            model = "fake-model-1"
            models = {{ haiku = "fake-small" }}
        """)
        assert ccs("key", "set", "fake", "--stdin", input="sk-fake-profile-key").returncode == 0
        settings = Path.home() / ".claude" / "settings.json"
        settings.parent.mkdir()
        settings.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": stale.url, "ANTHROPIC_AUTH_TOKEN": "stale",
                                                "ANTHROPIC_MODEL": "stale-model"}}))
        result = ccs("run", "fake", "--", "claude", "--print", "ping", cwd=claude_path, timeout=180)
        assert result.returncode == 0, result.stderr
        assert "pong from the fake provider" in result.stdout
        posts = [r for r in provider.requests if r.method == "POST" and r.path.startswith("/v1/messages")]
        assert posts, "claude never reached the profile's base URL"
        assert all(r.headers.get("authorization") == "Bearer sk-fake-profile-key" for r in posts)
        assert "x-api-key" not in posts[0].headers
        assert "fake-model-1" in {r.body["model"] for r in posts}
        assert not stale.requests
    finally:
        provider.close()
        stale.close()
