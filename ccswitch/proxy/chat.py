"""The Chat Completions pipeline: Anthropic's request translated for an OpenAI-API provider
(`to_openai`), its answer back (`from_openai`)."""

from __future__ import annotations

from .from_openai import StreamTranslator, translate_response
from .to_openai import translate_request
from .translated import Translated


class Chat(Translated):
    endpoint = "an OpenAI Chat Completions endpoint"

    def translate(self):
        return translate_request(self.req, self.upstream.options(self.model))

    def translate_whole(self, answer, names) -> dict:
        return translate_response(answer, self.outcome.requested, names, self.estimate_input)

    def stream_translator(self, names):
        return StreamTranslator(self.outcome.requested, names, self.estimate_input)
