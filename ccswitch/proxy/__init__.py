"""The embedded translation proxy: Anthropic Messages API in front, OpenAI Chat Completions behind."""
