"""The prompts that turn ``~/caption`` and ``~/answer`` into instructions for chat-style VLMs.

BLIP conditions its decoder on the prefix and question directly; chat models (``hf_chat``,
``openai``) need the request spelled out. One place, so every chat backend asks the same thing.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChatPrompts:
    caption_instruction: str = "Describe this image in one short sentence."
    answer_instruction: str = "Answer the question about this image in a few words."

    def caption(self, prefix: str = "") -> str:
        prefix = prefix.strip() if isinstance(prefix, str) else ""
        if not prefix:
            return self.caption_instruction
        return f"{self.caption_instruction} Start the sentence with \"{prefix}\"."

    def answer(self, question: str) -> str:
        return f"{self.answer_instruction}\nQuestion: {question}"
