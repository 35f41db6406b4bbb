"""The Responses pipeline: Anthropic's request translated for OpenAI's Responses API (`to_responses`), its
answer back (`from_responses`). Stateless: the model's reasoning rides in claude's thinking signatures,
marked as this profile's."""

from __future__ import annotations

from .from_responses import StreamTranslator, translate_response
from .pipeline import SESSION_HEADER
from .to_responses import translate_request
from .tool_ids import signer_tag
from .translated import Translated


class Responses(Translated):
    endpoint = "an OpenAI Responses endpoint"

    def translate(self):
        return translate_request(self.req, self.upstream.options(self.model), self.signer,
                                 self.headers.get(SESSION_HEADER, ""))

    def translate_whole(self, answer, names) -> dict:
        return translate_response(answer, self.outcome.requested, names, self.estimate_input, self.signer)

    def stream_translator(self, names):
        return StreamTranslator(self.outcome.requested, names, self.estimate_input, self.signer)

    @property
    def signer(self) -> str:
        return signer_tag(self.upstream.name)
