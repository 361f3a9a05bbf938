"""The openai backend's chat replies as Completions, and its tool conversations.

``completion_of`` reads a chat choice: the content, the server's separate reasoning
(``reasoning_content``, or ``reasoning``), the finish reason and, from ``usage`` when the request
had one choice, the token counts (``completion_tokens_details.reasoning_tokens`` for the reasoning).

``tool_sample`` is one sample with the calculator offered (``eval.tool_chat``): ``tools`` holds
``CALCULATOR_SCHEMA``, every ``tool_calls`` entry is run by the AST calculator and answered with a
``tool`` message, and the server is asked again, within one ``max_new_tokens`` budget for the
whole reply (when the server reports ``usage``). A server that refuses ``tools`` (a 400/422 naming
them) is an error saying how to turn tool calling on; the backend remembers it in
``tools_supported``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chattasks.errors import BackendError, Rejected
from chattasks.eval.backends.base import Completion, GenerationConfig
from chattasks.eval.backends.openai_wire import parse_chat_choices
from chattasks.eval.tool_chat import ToolConversation, openai_calls
from chattasks.tools.calls import CALCULATOR_SCHEMA

if TYPE_CHECKING:
    from chattasks.eval.backends.openai import OpenAIBackend

CHAT = "/chat/completions"


def parse_chat_with_usage(data: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``parse_chat_choices`` and the reply's ``usage`` (None when absent)."""
    usage = data.get("usage") if isinstance(data, dict) else None
    return parse_chat_choices(data), usage if isinstance(usage, dict) else None


def completion_of(choice: dict[str, Any], usage: dict[str, Any] | None = None) -> Completion:
    """A chat choice as a Completion: content, separate reasoning, finish reason and, from
    ``usage`` (give it only when the request had one choice), the token counts."""
    message = choice["message"]
    content = message.get("content")
    reasoning = message.get("reasoning_content", message.get("reasoning"))
    details = usage.get("completion_tokens_details") if usage else None
    tokens = usage.get("completion_tokens") if usage else None
    thought = details.get("reasoning_tokens") if isinstance(details, dict) else None
    finish = choice.get("finish_reason")
    return Completion(
        content if isinstance(content, str) else "",
        reasoning if isinstance(reasoning, str) and reasoning else None,
        finish if isinstance(finish, str) else None,
        tokens if isinstance(tokens, int) else None,
        thought if isinstance(thought, int) else None,
    )


async def tool_sample(
    backend: OpenAIBackend, body: dict[str, Any], config: GenerationConfig, sample: int
) -> Completion:
    """One sample of ``body``'s prompt as a tool conversation, seeded ``seed + sample``."""
    conversation = ToolConversation(body["messages"], max_new_tokens=config.max_new_tokens)
    while True:
        request = {
            **body,
            "messages": conversation.messages,
            "tools": [CALCULATOR_SCHEMA],
            "max_tokens": conversation.remaining_tokens,
            "seed": body["seed"] + sample,
        }
        try:
            choices, usage = await backend._transport.post(CHAT, request, parse_chat_with_usage)
        except Rejected as exc:
            if (
                backend.tools_supported
                or exc.status not in (400, 422)
                or "tool" not in exc.server_message.lower()
            ):
                raise
            backend.tools_supported = False
            raise BackendError(
                f"{backend.model}: the server refuses tools ({exc.server_message}); run with --tools none, "
                "or turn tool calling on (vLLM: --enable-auto-tool-choice --tool-call-parser ...)"
            ) from exc
        backend.tools_supported = True
        reply = completion_of(choices[0], usage)
        more = conversation.add_turn(
            reply.text,
            openai_calls(choices[0]["message"]),
            reasoning=reply.reasoning,
            finish_reason=reply.finish_reason,
            tokens=reply.tokens,
            reasoning_tokens=reply.reasoning_tokens,
        )
        if not more:
            return conversation.completion()
