"""The profiles file: validation with file and line, preset merging, edits that keep comments."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ccswitch import profiles
from ccswitch.errors import CcsError
from ccswitch.presets import PRESETS
from conftest import COMMENTED, REPO, ccs, write_config


def test_example_file_loads_and_covers_every_preset():
    config = profiles.parse((REPO / "profiles.example.toml").read_text(), REPO / "profiles.example.toml")
    used = {p.preset for p in config.profiles.values()}
    assert set(PRESETS) <= used, f"presets without an example: {set(PRESETS) - used}"
    assert any(p.key_env for p in config.profiles.values())
    assert any(p.key_cmd for p in config.profiles.values())
    assert any(p.aliases for p in config.profiles.values())
    routers = [p for p in config.profiles.values() if p.is_router]
    assert routers and all(config.route_problems(p) == [] for p in routers)


@pytest.mark.parametrize(("raw", "words"), [
    ({"models": {"opus": "glm,glm-4.6", "sonnet": "plain-model"}}, "model 'plain-model' has no provider"),
    ({"fallback": ["no-comma"]}, 'each entry is "profile,model"'),
    ({"fallback": "glm,glm-4.6"}, "'fallback' must be a list"),
    ({"models": {"opus": "bad name!,m"}}, "'bad name!' is not a profile name"),
    ({"fallback": ["glm,m"], "cooldown": -1}, "cooldown must be a number of seconds"),
    ({"fallback": ["glm,m"], "reach": ["glm,m"]}, "reach 'glm,m': each entry is a profile's name"),
    ({"fallback": ["glm,m"], "reach": "*"}, "'reach' must be a list"),
])
def test_router_values_are_checked(raw, words):
    with pytest.raises(CcsError, match=words.replace("(", r"\(")):
        profiles.resolve("mix", raw)


def test_a_router_needs_no_key_of_its_own_and_runs_through_the_proxy():
    mix = profiles.resolve("mix", {"models": {"opus": "glm,glm-4.6"}, "fallback": ["ds,deepseek-chat"]})
    assert mix.is_router and mix.uses_proxy and not mix.own_provider and not mix.needs_key
    guarded = profiles.resolve("glm", {"preset": "zai", "fallback": ["ds,deepseek-chat"]})
    assert guarded.uses_proxy and guarded.own_provider and guarded.needs_key
    assert profiles.resolve("glm", {"preset": "zai"}).uses_proxy  # behind the proxy by default, routes or not
    assert not profiles.resolve("glm", {"preset": "zai", "direct": True}).uses_proxy  # claude talks to Z.ai itself


def test_required_presets_exist():
    required = {"anthropic", "claude", "zai", "bigmodel", "kimi", "kimi-code", "deepseek", "minimax", "qwen",
                "openrouter", "ollama", "litellm", "openai", "gemini", "groq", "openrouter-openai", "lmstudio",
                "vllm", "llamacpp"}
    assert required <= set(PRESETS)
    for preset in PRESETS.values():  # every preset validates with what only the user knows (their resource)
        profiles.resolve("x", {"preset": preset.name, **(preset.needs or {})})


def test_preset_fills_in_and_profile_values_win_key_by_key():
    path = write_config("""
        version = 1
        [profiles.glm]
        preset = "zai"
        model = "glm-9"
        models = { haiku = "tiny" }
        env = { API_TIMEOUT_MS = "5" }
    """)
    glm = profiles.load(path).get("glm")
    assert glm.base_url == "https://api.z.ai/api/anthropic"
    assert glm.model == "glm-9"
    assert glm.models["haiku"] == "tiny" and glm.models["opus"] == "glm-5.4"
    assert glm.env == {"API_TIMEOUT_MS": "5", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def test_missing_file_is_an_empty_config(tmp_path):
    assert profiles.load(tmp_path / "nope.toml").profiles == {}


@pytest.mark.parametrize(
    "body, line, words",
    [
        ('[profiles.a]\npreset = "zai"\nmodle = "x"\n', 4, ["unknown key 'modle'", "did you mean 'model'", "'a'"]),
        ('[profiles.a]\nbase_url = "https://x.y"\ncontext_window = "big"\n', 4, ["must be an integer"]),
        ('[profiles.a]\npreset = "zia"\n', 3, ["unknown preset 'zia'", "did you mean 'zai'"]),
        ('[profiles.a]\nbase_url = "ftp://x"\n', 3, ["not an http(s) URL"]),
        ('[profiles.a]\npreset = "zai"\nkey_env = "X"\nkey_cmd = "echo"\n', 5, ["key_env or key_cmd"]),
        ('[profiles."bad name"]\npreset = "zai"\n', 2, ["invalid profile name"]),
        ('[profiles.a]\npreset = "zai"\nmodels = { giant = "m" }\n', 4, ["unknown key 'giant'", "agent:Explore"]),
        ('[profiles.a]\napi = "openai"\n', 3, ["needs a base_url"]),
        ('[profiles.a]\npreset = "zai"\n\n[profiles.a.env]\nX = 1\n', 5, ["env.X"]),
        ('[profiles.a]\npreset = "zai"\naliases = ["cc"]\n[profiles.b]\npreset = "zai"\naliases = ["cc"]\n', 7,
         ["alias 'cc' is used by profiles 'a' and 'b'"]),
        ('[profiles.a]\npreset = "zai"\nheaders = { Authorization = "Bearer sk-x" }\n', 4,
         ["headers.Authorization: ccs sends that header itself", "`auth`"]),
        ('[profiles.a]\npreset = "openai"\nheaders = { api-key = "k" }\n', 4, ["headers.api-key: ccs sends"]),
        ('[profiles.a]\npreset = "zai"\nheaders = { "X Team" = "x" }\n', 4, ["'X Team' is not a header name"]),
        ('[profiles.a]\npreset = "zai"\nheaders = { X-Team = "a\\r\\nX-Evil: 1" }\n', 4, ["one line"]),
        ('[profiles.a]\npreset = "zai"\nheaders = { X-Team = 1 }\n', 4, ["headers.X-Team must be a string"]),
        ('[profiles.a]\npreset = "zai"\nheaders = "X-Team: core"\n', 4, ["'headers' must be a table"]),
        ('[profiles.a]\npreset = "openai"\nextra_body = { stream = false }\n', 4,
         ["extra_body.stream: ccs writes the request's 'stream' itself"]),
        ('[profiles.a]\npreset = "zai"\nextra_body = { model = "other" }\n', 4, ["extra_body.model"]),
        ('[profiles.a]\npreset = "openrouter-openai"\nreasoning = { effort = "high", max_tokens = 2000 }\n', 4,
         ["an effort or a max_tokens budget, not both"]),
        ('[profiles.a]\npreset = "openrouter-openai"\nreasoning = { effort = "huge" }\n', 4,
         ["reasoning.effort must be one of none, minimal, low, medium, high, xhigh, max"]),
        ('[profiles.a]\npreset = "openrouter-openai"\nreasoning = { max_tokens = 0 }\n', 4, ["positive number"]),
        ('[profiles.a]\npreset = "openrouter-openai"\nreasoning = { exclude = "yes" }\n', 4, ["true or false"]),
        ('[profiles.a]\npreset = "openrouter-openai"\nreasoning = { budget = 5 }\n', 4, ["unknown key 'budget'"]),
        ('[profiles.a]\npreset = "openrouter"\nreasoning = { effort = "high" }\n', 4,
         ["an Anthropic-API provider gets claude's own thinking settings"]),
        ('[profiles.a]\npreset = "zai"\ndirect = true\nextra_body = { provider = { sort = "price" } }\n', 5,
         ["extra_body is merged into requests by the proxy", "direct = true"]),
    ],
)
def test_invalid_profiles_name_file_line_and_profile(body, line, words):
    path = write_config("version = 1\n" + body)
    with pytest.raises(profiles.ConfigError) as err:
        profiles.load(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}:"), message
    for word in words:
        assert word in message


def test_bad_toml_names_the_line():
    path = write_config('version = 1\n[profiles.a]\npreset = "zai\n')
    with pytest.raises(profiles.ConfigError, match=r"invalid TOML.*line 3"):
        profiles.load(path)


def test_newer_version_and_unknown_top_level_key():
    with pytest.raises(profiles.ConfigError, match="newer ccs"):
        profiles.load(write_config("version = 2\n"))
    with pytest.raises(profiles.ConfigError, match=r":1: unknown top-level key 'profile'"):
        profiles.load(write_config("profile = 1\n"))


def test_unknown_profile_suggests_a_close_name():
    config = profiles.load(write_config('[profiles.glm]\npreset = "zai"\n'))
    with pytest.raises(CcsError, match="did you mean 'glm'"):
        config.get("gml")


def test_edit_keeps_comments_layout_and_other_profiles():
    path = write_config(COMMENTED)
    with profiles.editing(path) as doc:
        doc["profiles"]["glm"]["model"] = "glm-5"
    text = path.read_text()
    assert text == COMMENTED.replace('model = "glm-4.6"', 'model = "glm-5"')


def test_invalid_edit_writes_nothing():
    path = write_config(COMMENTED)
    with pytest.raises(profiles.ConfigError, match="unknown key"):
        with profiles.editing(path) as doc:
            doc["profiles"]["glm"]["nonsense"] = 1
    assert path.read_text() == COMMENTED


def test_a_broken_file_is_never_rewritten():
    broken = COMMENTED + "[profiles.x\n"
    path = write_config(broken)
    result = ccs("set", "glm", "model=m")
    assert result.returncode == 2
    assert "invalid TOML" in result.stderr and "Traceback" not in result.stderr
    assert path.read_text() == broken


def test_concurrent_edits_lose_nothing():
    path = write_config(COMMENTED)
    procs = [subprocess.Popen([sys.executable, "-m", "ccswitch", "set", "glm", f"env.VAR_{i}={i}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    env = profiles.load(path).get("glm").env
    assert {f"VAR_{i}" for i in range(6)} <= set(env)
    assert "# the fast one" in path.read_text()


def test_parse_value_reads_toml_or_falls_back_to_text():
    assert profiles.parse_value("42") == 42
    assert profiles.parse_value('["a", "b"]') == ["a", "b"]
    assert profiles.parse_value("glm-4.6") == "glm-4.6"
    assert profiles.parse_value("https://x.y/z") == "https://x.y/z"


def test_a_bad_header_is_one_line_and_exit_2():
    write_config('version = 1\n[profiles.gw]\npreset = "zai"\nheaders = { x-api-key = "sk-gw-secret" }\n')
    result = ccs("show", "gw")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "headers.x-api-key: ccs sends that header itself" in result.stderr


def test_headers_and_extra_body_merge_with_a_presets_key_by_key():
    gh = profiles.resolve("gh", {"preset": "github-models", "headers": {"X-Team": "core"},
                                 "extra_body": {"provider": {"sort": "price"}}})
    assert gh.headers == {"X-GitHub-Api-Version": "2022-11-28", "X-Team": "core"}
    assert gh.extra_body == {"provider": {"sort": "price"}}
    assert profiles.resolve("plain", {"preset": "zai"}).headers == {}


@pytest.mark.parametrize(("preset", "url", "api", "model"), [
    ("nvidia", "https://integrate.api.nvidia.com/v1", "openai", "moonshotai/kimi-k2.6"),
    ("github-models", "https://models.github.ai/inference", "openai", "openai/gpt-4.1"),
    ("vercel", "https://ai-gateway.vercel.sh", "anthropic", "anthropic/claude-sonnet-5.5"),
])
def test_the_gateway_presets_as_their_docs_say(preset, url, api, model):
    from ccswitch.presets import PRESETS
    from ccswitch.proxy.upstream import Upstream

    profile = profiles.resolve("p", {"preset": preset})
    upstream = Upstream.from_profile(profile, "key-1", {})
    assert (profile.url, profile.api, profile.auth) == (url, api, "bearer")
    assert upstream.model_for("claude-sonnet-5-5") == model
    assert upstream.headers()["Authorization"] == "Bearer key-1"
    assert PRESETS[preset].checked == "2026-12-04" and PRESETS[preset].docs.startswith("https://")


@pytest.mark.parametrize(("url", "base_url", "model"), [
    ("https://team.openai.azure.com/openai/deployments/gpt-big/chat/completions?api-version=2024-10-21",
     "https://team.openai.azure.com/openai/v1", "gpt-big"),
    ("https://team.openai.azure.com/openai/deployments/gpt-big", "https://team.openai.azure.com/openai/v1", "gpt-big"),
    ("https://team.cognitiveservices.azure.com/openai/responses?api-version=2025-04-01-preview",
     "https://team.cognitiveservices.azure.com/openai/v1", "DEPLOYMENT"),
    ("https://team.openai.azure.com/", "https://team.openai.azure.com/openai/v1", "DEPLOYMENT"),
])
def test_azures_older_urls_are_refused_with_what_to_write_instead(url, base_url, model):
    with pytest.raises(CcsError) as err:
        profiles.resolve("az", {"preset": "azure-openai", "base_url": url, "model": "m"})
    message = str(err.value)
    assert f'base_url = "{base_url}"' in message and f'model = "{model}"' in message, message
    assert "api-version=" not in message  # the URL itself is not repeated (its query may hold a key)


def test_the_azure_preset_asks_for_the_resource_and_deployment_and_sends_an_api_key_header():
    with pytest.raises(CcsError, match='needs your base_url: base_url = "https://my-resource.openai.azure.com/openai/v1"'):
        profiles.resolve("az", {"preset": "azure-openai", "model": "gpt-big"})
    with pytest.raises(CcsError, match="needs your model"):
        profiles.resolve("az", {"preset": "azure-openai", "base_url": "https://team.openai.azure.com/openai/v1"})
    az = profiles.resolve("az", {"preset": "azure-openai", "base_url": "https://team.openai.azure.com/openai/v1",
                                 "model": "gpt-big"})
    assert (az.api, az.auth, az.uses_proxy) == ("openai", "api-key", True)
    from ccswitch.proxy.upstream import Upstream

    upstream = Upstream.from_profile(az, "azure-key-1", {})
    assert upstream.url == "https://team.openai.azure.com/openai/v1/chat/completions"
    assert upstream.headers() == {"api-key": "azure-key-1"}
    assert upstream.model_for("claude-opus-5-5") == "gpt-big"  # every tier: the deployment


def test_openrouters_reasoning_reaches_the_translator():
    from ccswitch.proxy.upstream import Upstream

    profile = profiles.resolve("or", {"preset": "openrouter-openai", "reasoning": {"max_tokens": 2000, "exclude": True}})
    options = Upstream.from_profile(profile, "k", {}).options("openai/gpt-5.6-sol")
    assert options.reasoning == {"max_tokens": 2000, "exclude": True} and options.dialect.reasoning_object


@pytest.mark.parametrize(("raw", "words"), [
    ({"preset": "bedrock", "region": "us-east1"}, "region 'us-east1' is not an AWS region such as us-east-1"),
    ({"preset": "vertex", "project": "p", "region": "us-east-1"}, "not a Vertex AI region"),
    ({"preset": "vertex"}, 'the vertex preset needs your project: project = "my-gcp-project"'),
    ({"auth": "vertex", "region": "global"}, 'auth = "vertex" (Google Vertex AI) needs project'),
    ({"auth": "bedrock"}, 'auth = "bedrock" (Amazon Bedrock) needs region'),
    ({"auth": "foundry"}, "needs resource or base_url"),
    ({"preset": "foundry", "resource": "https://x.services.ai.azure.com"}, "bare name"),
    ({"preset": "zai", "region": "us-east-1"}, 'region is for a profile on claude\'s clouds (auth = "bedrock" or '
                                               '"mantle" or "vertex")'),
    ({"preset": "bedrock", "project": "p"}, 'project is for a profile on claude\'s clouds (auth = "vertex")'),
    ({"preset": "bedrock", "key_env": "AWS_SECRET_ACCESS_KEY"}, "ccs holds no key for this profile"),
    ({"preset": "openai", "auth": "bedrock", "region": "us-east-1"}, 'auth = "bedrock" only works with api = "anthropic"'),
    ({"preset": "bedrock", "extra_body": {"x": 1}}, "claude signs its requests with your AWS credentials"),
])
def test_cloud_profiles_are_checked(raw, words):
    with pytest.raises(CcsError) as err:
        profiles.resolve("c", raw)
    assert words in str(err.value)


def test_a_cloud_profile_is_signed_by_claude_never_proxied_nor_routed_to():
    aws = profiles.resolve("aws", {"preset": "bedrock"})
    assert aws.cloud.switch == "CLAUDE_CODE_USE_BEDROCK" and aws.signed_with == "your AWS credentials"
    assert not aws.uses_proxy and not aws.needs_key and aws.provider == "bedrock"
    assert profiles.resolve("v", {"auth": "vertex", "project": "p", "region": "us-east5"}).provider == "vertex"
    config = profiles.parse('[profiles.aws]\npreset = "bedrock"\n[profiles.mix]\nmodels = { opus = "aws,x" }\n',
                            REPO / "p.toml")
    assert config.route_problems(config.get("mix")) == [
        "route 'aws,x': profile 'aws' is signed in by claude itself, with your AWS credentials, which cannot go "
        "through the proxy (claude would send the proxy's token instead)"]


def test_every_list_field_can_be_typed_on_the_command_line():
    from ccswitch import edits

    assert {field for field, kind in profiles.FIELDS.items() if kind is list} <= set(edits.LIST_WORDS)
    assert edits.field_value("reach", "kimi, gpt") == ["kimi", "gpt"]
