"""The embedded proxy every proxied session goes through: Anthropic's Messages API in front; behind it each
provider in its own API (relayed, or translated to OpenAI's Chat Completions or Responses)."""
