"""The embedded translation proxy: Anthropic Messages API in front, OpenAI Chat Completions behind."""

import sys

# httpx imports its own command-line tool, and with it click, rich and pygments, whenever they are
# installed (uvicorn brings click). The proxy never uses it; leaving it out saves ~50 ms and ~4 MB
# at every proxy start (measured). httpx falls back to a stub `httpx.main` by design.
sys.modules.setdefault("httpx._main", None)
