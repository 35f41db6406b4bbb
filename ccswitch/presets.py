"""Built-in provider presets: plain data that fills in whatever a profile does not say.

Values come from each provider's own Claude Code / API documentation, checked 2026-11-21.
`context_window` is the default model's input window: without it claude assumes 1M tokens for a
model name it does not know, and auto-compacts far too late.
A preset holds profile fields only (see `profiles.FIELDS`), so merging is a dict update.
"""

from __future__ import annotations

from typing import NamedTuple


class Preset(NamedTuple):  # a NamedTuple, not a dataclass: `ccs run` must not pay for importing dataclasses
    name: str
    title: str
    docs: str
    fields: dict


# Providers whose docs recommend a long timeout and no side traffic for Claude Code.
_SLOW = {"API_TIMEOUT_MS": "3000000", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def _free() -> dict:
    """A model server on this machine costs nothing per token (a profile's own `prices` say otherwise)."""
    return {"*": {"input": 0, "output": 0}}


def _tiers(opus: str, sonnet: str, haiku: str) -> dict:
    return {"opus": opus, "sonnet": sonnet, "haiku": haiku, "subagent": sonnet}


_ALL = [
    # --- Anthropic Messages API: no proxy, claude talks to the provider directly ---
    Preset("anthropic", "Anthropic API (API key)", "https://docs.anthropic.com/en/api/getting-started",
           {"api": "anthropic", "base_url": "https://api.anthropic.com", "auth": "api-key"}),
    Preset("claude", "Claude subscription (claude's own login)", "https://docs.anthropic.com/en/docs/claude-code",
           {"api": "anthropic", "auth": "login"}),
    Preset("zai", "Z.ai GLM Coding Plan (international)", "https://docs.z.ai/devpack/tool/claude",
           {"api": "anthropic", "base_url": "https://api.z.ai/api/anthropic", "auth": "bearer",
            "model": "glm-4.6", "models": _tiers("glm-4.6", "glm-4.6", "glm-4.5-air"), "env": dict(_SLOW), "context_window": 200000}),
    Preset("bigmodel", "Zhipu BigModel GLM (mainland China)", "https://docs.bigmodel.cn/cn/guide/develop/claude",
           {"api": "anthropic", "base_url": "https://open.bigmodel.cn/api/anthropic", "auth": "bearer",
            "model": "glm-4.6", "models": _tiers("glm-4.6", "glm-4.6", "glm-4.5-air"), "env": dict(_SLOW), "context_window": 200000}),
    Preset("kimi", "Moonshot Kimi platform API", "https://platform.moonshot.ai/docs/guide/agent-support",
           {"api": "anthropic", "base_url": "https://api.moonshot.ai/anthropic", "auth": "bearer",
            "model": "kimi-k2.5", "models": _tiers("kimi-k2.5", "kimi-k2.5", "kimi-k2.5"), "context_window": 262144,
            "env": {"API_TIMEOUT_MS": "600000", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}),
    Preset("kimi-code", "Kimi For Coding membership (sk-kimi- keys, x-api-key)",
           "https://www.kimi.com/code/docs/en/third-party-tools/other-coding-agents.html",
           {"api": "anthropic", "base_url": "https://api.kimi.com/coding/", "auth": "api-key",
            "model": "kimi-for-coding", "models": _tiers("kimi-for-coding", "kimi-for-coding", "kimi-for-coding"), "context_window": 262144,
            "env": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}),
    Preset("deepseek", "DeepSeek API", "https://api-docs.deepseek.com/guides/anthropic_api",
           {"api": "anthropic", "base_url": "https://api.deepseek.com/anthropic", "auth": "bearer",
            "model": "deepseek-chat", "models": _tiers("deepseek-chat", "deepseek-chat", "deepseek-chat"), "context_window": 128000,
            "env": {"API_TIMEOUT_MS": "600000", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}),
    Preset("minimax", "MiniMax (international)", "https://platform.minimax.io/docs/guides/text-ai-coding-tools",
           {"api": "anthropic", "base_url": "https://api.minimax.io/anthropic", "auth": "bearer",
            "model": "MiniMax-M2.7", "models": _tiers("MiniMax-M2.7", "MiniMax-M2.7", "MiniMax-M2.7"), "context_window": 204800,
            "env": dict(_SLOW)}),
    Preset("qwen", "Alibaba Model Studio / DashScope (international)",
           "https://www.alibabacloud.com/help/en/model-studio/anthropic-api-messages",
           {"api": "anthropic", "base_url": "https://dashscope-intl.aliyuncs.com/apps/anthropic", "auth": "bearer",
            "model": "qwen3-coder-plus", "models": _tiers("qwen3-coder-plus", "qwen3-coder-plus", "qwen-flash"), "context_window": 1000000}),
    Preset("openrouter", "OpenRouter (its Anthropic-compatible API)", "https://openrouter.ai/docs/guides/claude-code",
           {"api": "anthropic", "base_url": "https://openrouter.ai/api", "auth": "bearer",
            "models": _tiers("anthropic/claude-opus-4.5", "anthropic/claude-sonnet-4.5", "anthropic/claude-haiku-4.5"), "context_window": 200000}),
    Preset("ollama", "Ollama >= 0.14 on this machine (Anthropic API)", "https://docs.ollama.com/integrations/claude-code",
           {"api": "anthropic", "base_url": "http://localhost:11434", "auth": "none",
            "model": "qwen3-coder", "env": {"ANTHROPIC_AUTH_TOKEN": "ollama"}, "prices": _free()}),
    Preset("litellm", "A LiteLLM gateway (team proxy)", "https://docs.litellm.ai/docs/tutorials/claude_responses_api",
           {"api": "anthropic", "base_url": "http://localhost:4000", "auth": "bearer"}),
    # --- OpenAI Chat Completions: served through the embedded translation proxy ---
    Preset("openai", "OpenAI API", "https://platform.openai.com/docs/api-reference/chat",
           {"api": "openai", "base_url": "https://api.openai.com/v1", "auth": "bearer",
            "model": "gpt-5", "models": _tiers("gpt-5", "gpt-5", "gpt-5-mini"), "context_window": 272000}),
    Preset("gemini", "Google Gemini (OpenAI-compatible endpoint)", "https://ai.google.dev/gemini-api/docs/openai",
           {"api": "openai", "base_url": "https://generativelanguage.googleapis.com/v1beta/openai", "auth": "bearer",
            "model": "gemini-2.5-pro", "models": _tiers("gemini-2.5-pro", "gemini-2.5-pro", "gemini-2.5-flash"), "context_window": 1048576}),
    Preset("groq", "Groq", "https://console.groq.com/docs/openai",
           {"api": "openai", "base_url": "https://api.groq.com/openai/v1", "auth": "bearer",
            "model": "openai/gpt-oss-120b", "models": _tiers("openai/gpt-oss-120b", "openai/gpt-oss-120b", "openai/gpt-oss-20b"), "context_window": 131072}),
    Preset("openrouter-openai", "OpenRouter (its OpenAI-compatible API)", "https://openrouter.ai/docs/api-reference/overview",
           {"api": "openai", "base_url": "https://openrouter.ai/api/v1", "auth": "bearer",
            "model": "openai/gpt-5", "models": _tiers("openai/gpt-5", "openai/gpt-5", "openai/gpt-5-mini"), "context_window": 272000}),
    Preset("lmstudio", "LM Studio on this machine", "https://lmstudio.ai/docs/app/api/endpoints/openai",
           {"api": "openai", "base_url": "http://localhost:1234/v1", "auth": "none", "prices": _free()}),
    Preset("vllm", "vLLM server on this machine", "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
           {"api": "openai", "base_url": "http://localhost:8000/v1", "auth": "none", "prices": _free()}),
    Preset("llamacpp", "llama.cpp llama-server on this machine",
           "https://github.com/ggml-org/llama.cpp/tree/master/tools/server",
           {"api": "openai", "base_url": "http://localhost:8080/v1", "auth": "none", "prices": _free()}),
]

PRESETS: dict[str, Preset] = {p.name: p for p in _ALL}
