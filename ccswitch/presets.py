"""Built-in provider presets: plain data that fills in whatever a profile does not say.

Each comes from its provider's own documentation (`docs`), checked on the date beside it (`checked`), so
the next check starts there. `context_window` is the default model's window: without it claude assumes
1M tokens for a model name it does not know, and compacts too late for a smaller one. `prices` appear
only for models the price table (genai-prices) does not know yet.
A preset holds profile fields only (see `profiles.FIELDS`), so merging is a dict update.
"""

from __future__ import annotations

from typing import NamedTuple


class Preset(NamedTuple):  # a NamedTuple, not a dataclass: `ccs run` must not pay for importing dataclasses
    name: str
    title: str
    docs: str
    fields: dict
    checked: str = "2026-12-04"  # when `docs` was last read for these values
    needs: dict | None = None  # fields only the user knows (their resource, their deployment), with an example each


# Providers whose docs recommend a long timeout and no side traffic for Claude Code.
_SLOW = {"API_TIMEOUT_MS": "3000000", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def _free() -> dict:
    """A model server on this machine costs nothing per token (a profile's own `prices` say otherwise)."""
    return {"*": {"input": 0, "output": 0}}


def _tiers(opus: str, sonnet: str, haiku: str, subagent: str | None = None) -> dict:
    return {"opus": opus, "sonnet": sonnet, "haiku": haiku, "subagent": subagent or sonnet}


def _cloud_tiers(prefix: str) -> dict:
    """Claude's 5.5 models (and Fable 5.1) as a cloud names them: `prefix` + "opus-5-5" and so on."""
    return {**_tiers(prefix + "opus-5-5", prefix + "sonnet-5-5", prefix + "haiku-5-5"), "fable": prefix + "fable-5-1"}


# Z.ai and BigModel announced GLM-5.4 (2026-11-23) for the Coding Plan; the price table has no entry yet.
# Their pay-as-you-go price, as resellers quote it (the same as GLM-5.3's).
_GLM = {"model": "glm-5.4", "models": _tiers("glm-5.4", "glm-5.4", "glm-5.3-flash"), "context_window": 1048576,
        "env": dict(_SLOW), "prices": {"glm-5.4": {"input": 1.4, "output": 4.4, "cache_read": 0.26}}}
# A local server's Anthropic endpoint: the key is ignored unless the server was started with one.
_LOCAL = {"api": "anthropic", "auth": "none", "prices": _free()}
_LOCAL_OPENAI = {"api": "openai", "auth": "none", "prices": _free()}

_ALL = [
    # --- Anthropic Messages API: the proxy passes requests through, with the provider's key ---
    Preset("anthropic", "Anthropic API (API key)", "https://platform.claude.com/docs/en/api/overview",
           {"api": "anthropic", "base_url": "https://api.anthropic.com", "auth": "api-key"}),
    Preset("claude", "Claude subscription (claude's own login)", "https://code.claude.com/docs",
           {"api": "anthropic", "auth": "login"}),
    Preset("zai", "Z.ai GLM Coding Plan (international)", "https://docs.z.ai/devpack/tool/claude",
           {"api": "anthropic", "base_url": "https://api.z.ai/api/anthropic", "auth": "bearer", **_GLM}),
    Preset("bigmodel", "Zhipu BigModel GLM (mainland China)", "https://docs.bigmodel.cn/cn/coding-plan/tool/claude",
           {"api": "anthropic", "base_url": "https://open.bigmodel.cn/api/anthropic", "auth": "bearer", **_GLM}),
    Preset("kimi", "Moonshot Kimi platform API", "https://platform.kimi.ai/docs/guide/agent-support",
           {"api": "anthropic", "base_url": "https://api.moonshot.ai/anthropic", "auth": "bearer",
            "model": "kimi-k3.1-pro", "models": _tiers("kimi-k3.1-pro", "kimi-k3.1-pro", "kimi-k2.7-code"),
            "context_window": 1048576,
            "env": {"API_TIMEOUT_MS": "600000", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}),
    Preset("kimi-code", "Kimi For Coding membership (sk-kimi- keys, x-api-key)",
           "https://www.kimi.com/code/docs/en/third-party-tools/other-coding-agents.html",
           {"api": "anthropic", "base_url": "https://api.kimi.com/coding/", "auth": "api-key",
            "model": "kimi-for-coding", "models": _tiers("kimi-for-coding", "kimi-for-coding", "kimi-for-coding"),
            "context_window": 262144, "env": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}),
    # deepseek-chat and deepseek-reasoner were retired on 2026-07-24
    Preset("deepseek", "DeepSeek API", "https://api-docs.deepseek.com/quick_start/agent_integrations/claude_code",
           {"api": "anthropic", "base_url": "https://api.deepseek.com/anthropic", "auth": "bearer",
            "model": "deepseek-flash", "models": _tiers("deepseek-v4-pro", "deepseek-flash", "deepseek-flash"),
            "context_window": 1048576,
            "env": {"API_TIMEOUT_MS": "600000", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}),
    Preset("minimax", "MiniMax (international)", "https://platform.minimax.io/docs/m-plan/claude-code",
           {"api": "anthropic", "base_url": "https://api.minimax.io/anthropic", "auth": "bearer",
            "model": "MiniMax-M3", "models": _tiers("MiniMax-M3", "MiniMax-M3", "MiniMax-M3.1-Flash"),
            "context_window": 1000000, "env": dict(_SLOW)}),
    # The price table has no Alibaba provider: Model Studio's list price of its flagship, as quoted on launch.
    Preset("qwen", "Alibaba Model Studio / DashScope (international)",
           "https://www.alibabacloud.com/help/en/model-studio/claude-code",
           {"api": "anthropic", "base_url": "https://dashscope-intl.aliyuncs.com/apps/anthropic", "auth": "bearer",
            "model": "qwen3.8-max", "models": _tiers("qwen3.8-max", "qwen3.7-max", "qwen3.6-flash"),
            "context_window": 1000000, "prices": {"qwen3.8-max": {"input": 2.0, "output": 6.0}}}),
    # Claude model names: claude knows their windows itself
    Preset("openrouter", "OpenRouter (its Anthropic-compatible API)",
           "https://openrouter.ai/docs/guides/coding-agents/claude-code-integration",
           {"api": "anthropic", "base_url": "https://openrouter.ai/api", "auth": "bearer",
            "models": _tiers("anthropic/claude-opus-5.5", "anthropic/claude-sonnet-5.5", "anthropic/claude-haiku-5.5")}),
    # Vercel's gateway serves every model it routes (not only Anthropic's) through its Anthropic-compatible API
    Preset("vercel", "Vercel AI Gateway (its Anthropic-compatible API)",
           "https://vercel.com/docs/ai-gateway/coding-agents/claude-code",
           {"api": "anthropic", "base_url": "https://ai-gateway.vercel.sh", "auth": "bearer",
            "models": _tiers("anthropic/claude-opus-5.5", "anthropic/claude-sonnet-5.5", "anthropic/claude-haiku-5.5")}),
    Preset("ollama", "Ollama >= 0.14 on this machine (Anthropic API)", "https://docs.ollama.com/integrations/claude-code",
           {**_LOCAL, "base_url": "http://localhost:11434", "model": "qwen3.5", "context_window": 65536,
            "env": {"ANTHROPIC_AUTH_TOKEN": "ollama"}}),
    Preset("lmstudio", "LM Studio on this machine (its Anthropic API)", "https://lmstudio.ai/docs/integrations/claude-code",
           {**_LOCAL, "base_url": "http://localhost:1234"}),
    Preset("vllm", "vLLM on this machine (its Anthropic API, >= 0.11.1)",
           "https://docs.vllm.ai/en/stable/serving/integrations/claude_code/",
           {**_LOCAL, "base_url": "http://localhost:8000"}),
    Preset("llamacpp", "llama.cpp llama-server on this machine (its Anthropic API)",
           "https://huggingface.co/blog/ggml-org/anthropic-messages-api-in-llamacpp",
           {**_LOCAL, "base_url": "http://localhost:8080"}),
    Preset("litellm", "A LiteLLM gateway (team proxy)", "https://docs.litellm.ai/docs/proxy/client_setup/claude_code",
           {"api": "anthropic", "base_url": "http://localhost:4000", "auth": "bearer"}),
    # --- claude's clouds: claude signs in itself with the cloud's credentials; ccs holds no key, runs no proxy.
    # Tiers as claude 2.1.332's model table names them on each cloud (its provider ids).
    Preset("bedrock", "Amazon Bedrock (claude signs in with your AWS credentials)",
           "https://code.claude.com/docs/en/amazon-bedrock",
           {"api": "anthropic", "auth": "bedrock", "region": "us-east-1",  # us. ids: a US cross-region profile
            "models": _cloud_tiers("us.anthropic.claude-")}),
    Preset("mantle", "Amazon Bedrock's Anthropic API, Mantle (your AWS credentials)",
           "https://code.claude.com/docs/en/amazon-bedrock",
           {"api": "anthropic", "auth": "mantle", "region": "us-east-1",
            "models": _cloud_tiers("anthropic.claude-")}),
    Preset("vertex", "Google Vertex AI (claude signs in with your Google Cloud credentials)",
           "https://code.claude.com/docs/en/google-vertex-ai",
           {"api": "anthropic", "auth": "vertex", "region": "global",
            "models": _cloud_tiers("claude-")},
           needs={"project": "my-gcp-project"}),
    Preset("foundry", "Microsoft Foundry (claude signs in with your Azure credentials)",
           "https://code.claude.com/docs/en/microsoft-foundry",
           {"api": "anthropic", "auth": "foundry",  # deployments named as the models are, Foundry's suggestion
            "models": _cloud_tiers("claude-")},
           needs={"resource": "my-resource"}),
    # --- OpenAI's APIs: translated by the proxy ---
    # The Responses API: OpenAI serves its codex and pro models there only (GPT-6 models take tools there only),
    # and GPT-5.x calls tools with reasoning there (Chat Completions refuses tools with reasoning_effort).
    Preset("openai", "OpenAI API (Responses)", "https://developers.openai.com/api/docs/models/gpt-5.6-sol",
           {"api": "openai-responses", "base_url": "https://api.openai.com/v1", "auth": "bearer",
            "model": "gpt-5.6-sol", "models": _tiers("gpt-5.6-sol", "gpt-5.6-sol", "gpt-5.6-luna"),
            "context_window": 272000}),
    # The same through Chat Completions, the older route; GPT-5.6 Sol is the newest that calls tools there.
    Preset("openai-chat", "OpenAI API (Chat Completions)", "https://developers.openai.com/api/docs/models/gpt-5.6-sol",
           {"api": "openai", "base_url": "https://api.openai.com/v1", "auth": "bearer",
            "model": "gpt-5.6-sol", "models": _tiers("gpt-5.6-sol", "gpt-5.6-sol", "gpt-5.6-luna"),
            "context_window": 272000}),
    # gemini-2.5-pro and -flash were retired on 2026-12-01 (Google routes them to 3.8 Flash and 3.5 Flash-Lite)
    Preset("gemini", "Google Gemini (OpenAI-compatible endpoint)", "https://ai.google.dev/gemini-api/docs/openai",
           {"api": "openai", "base_url": "https://generativelanguage.googleapis.com/v1beta/openai", "auth": "bearer",
            "model": "gemini-3.8-flash", "models": _tiers("gemini-3.8-flash", "gemini-3.8-flash", "gemini-3.5-flash-lite"),
            "context_window": 1048576}),
    # Azure OpenAI's v1 API (GA since August 2025): no api-version; the deployment's name is the model; the key in
    # an `api-key` header (or `auth = "bearer"` with a key_cmd that prints a Microsoft Entra token)
    Preset("azure-openai", "Azure OpenAI v1 API (your resource; the deployment's name is the model)",
           "https://learn.microsoft.com/en-us/azure/foundry/openai/api-version-lifecycle",
           {"api": "openai", "auth": "api-key"},
           needs={"base_url": "https://my-resource.openai.azure.com/openai/v1", "model": "my-deployment"}),
    Preset("groq", "Groq", "https://console.groq.com/docs/openai",
           {"api": "openai", "base_url": "https://api.groq.com/openai/v1", "auth": "bearer",
            "model": "openai/gpt-oss-120b", "models": _tiers("openai/gpt-oss-120b", "openai/gpt-oss-120b",
                                                              "openai/gpt-oss-20b"), "context_window": 131072}),
    Preset("openrouter-openai", "OpenRouter (its OpenAI-compatible API)",
           "https://openrouter.ai/docs/api-reference/overview",
           {"api": "openai", "base_url": "https://openrouter.ai/api/v1", "auth": "bearer",
            "model": "openai/gpt-5.6-sol", "models": _tiers("openai/gpt-5.6-sol", "openai/gpt-5.6-sol",
                                                             "openai/gpt-5.6-luna"), "context_window": 272000}),
    # NVIDIA's hosted NIM catalogue (nvapi- keys from build.nvidia.com): Kimi K2.6 takes tools there, and up to
    # 65,536 output tokens; its window is Moonshot's 256K
    Preset("nvidia", "NVIDIA NIM hosted API (build.nvidia.com)",
           "https://docs.api.nvidia.com/nim/reference/moonshotai-kimi-k2-6-infer",
           {"api": "openai", "base_url": "https://integrate.api.nvidia.com/v1", "auth": "bearer",
            "model": "moonshotai/kimi-k2.6", "models": _tiers(*["moonshotai/kimi-k2.6"] * 3),
            "context_window": 262144, "max_output_tokens": 65536}),
    # A GitHub token with the models scope (models: read for a fine-grained one); free within rate limits
    Preset("github-models", "GitHub Models (a GitHub token with the models scope)",
           "https://docs.github.com/en/rest/models/inference",
           {"api": "openai", "base_url": "https://models.github.ai/inference", "auth": "bearer",
            "model": "openai/gpt-4.1", "models": _tiers(*["openai/gpt-4.1"] * 3),
            "headers": {"X-GitHub-Api-Version": "2022-11-28"}}),
    # The same local servers through their OpenAI API, for versions without an Anthropic one
    Preset("lmstudio-openai", "LM Studio on this machine (OpenAI API)", "https://lmstudio.ai/docs/app/api/endpoints/openai",
           {**_LOCAL_OPENAI, "base_url": "http://localhost:1234/v1"}),
    Preset("vllm-openai", "vLLM on this machine (OpenAI API)",
           "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
           {**_LOCAL_OPENAI, "base_url": "http://localhost:8000/v1"}),
    Preset("llamacpp-openai", "llama.cpp llama-server on this machine (OpenAI API)",
           "https://github.com/ggml-org/llama.cpp/tree/master/tools/server",
           {**_LOCAL_OPENAI, "base_url": "http://localhost:8080/v1"}),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _ALL}

# Presets whose provider's list prices genai-prices holds (by the preset's URL; test_usage checks each): what
# `ccs usage` prices their requests with, and what a budget on them counts against without `prices` of its own.
LISTED = frozenset({"anthropic", "kimi", "deepseek", "minimax", "openrouter", "openai", "openai-chat", "gemini",
                    "groq", "openrouter-openai"})
