"""HumanEval: write a Python function from its signature and docstring; graded by running tests.

Dataset: ``openai/openai_humaneval`` -- https://huggingface.co/datasets/openai/openai_humaneval --
164 problems, one split (``test``), read shuffled with seed 42 as nanochat does. This raw row::

    {"task_id": "HumanEval/34",
     "prompt": "\\n\\ndef unique(l: list):\\n    \\"\\"\\"Return sorted unique elements in a list\\n
                >>> unique([5, 3, 5, 2, 3, 3, 9, 0, 123])\\n    [0, 2, 3, 5, 9, 123]\\n    \\"\\"\\"\\n",
     "canonical_solution": "    return sorted(list(set(l)))\\n",
     "test": "\\n\\nMETADATA = {}\\n\\n\\ndef check(candidate):\\n    assert candidate([5, 3, 5, 2, 3, 3, 9,
              0, 123]) == [0, 2, 3, 5, 9, 123]\\n\\n",
     "entry_point": "unique"}

becomes::

    {"messages": [
        {"role": "user", "content": <prompt>},
        {"role": "assistant", "content": <prompt> + "\\n" + <canonical_solution>}],
     "entry_point": "unique",
     "test": <test>}

Grading (``evaluate``): ``extract_program`` takes the code out of the response -- the fenced
Python block that defines the entry point (the first block when none does; an unclosed fence
runs to the end), else the whole text; ``build_program`` puts the prompt's imports before it
and the test plus ``check(<entry_point>)`` after it; the program runs in ``chattasks.sandbox``
and scores 1 only when it ran to its end. ``run_many`` grades many responses in parallel and
returns the sandbox results, so timeouts can be counted apart from wrong answers.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Sequence
from typing import Any

from chattasks.conversation import assistant_text
from chattasks.data import load_rows
from chattasks.sandbox import DEFAULT_TIMEOUT, SandboxPool, SandboxResult, default_pool
from chattasks.task import Conversation, Task

DATASET = "openai/openai_humaneval"

_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[ \t]*$")
_PYTHON = {"", "python", "python3", "py", "py3"}


def extract_imports(prompt: str) -> str:
    """The prompt's top-level import statements, one per line (the leading import lines when
    the prompt does not parse)."""
    try:
        tree = ast.parse(prompt)
    except SyntaxError:
        lines = []
        for line in prompt.splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                lines.append(stripped)
            elif stripped and not stripped.startswith("#"):
                break
        return "\n".join(lines)
    nodes = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    return "\n".join(ast.get_source_segment(prompt, node) or ast.unparse(node) for node in nodes)


def code_blocks(text: str) -> list[str]:
    """The bodies of the ```python (also ```py, ```python3, or bare ```) fenced blocks in `text`,
    in order and dedented. Blocks in other languages are skipped; a fence closed at the end of a
    code line closes there; an unclosed last fence runs to the end of the text."""
    blocks: list[str] = []
    language: str | None = None  # of the block we are in; None between blocks
    body: list[str] = []
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if language is None:
            if fence:
                language, body = fence.group(1).lower(), []
            continue
        closes = (fence is not None and not fence.group(1)) or line.rstrip().endswith("```")
        if closes and fence is None:
            body.append(line.rstrip()[:-3])
        elif not closes:
            body.append(line)
            continue
        if language in _PYTHON:
            blocks.append(textwrap.dedent("\n".join(body)).strip("\n"))
        language = None
    if language in _PYTHON:
        blocks.append(textwrap.dedent("\n".join(body)).strip("\n"))
    return blocks


def extract_program(response: str, entry_point: str | None = None) -> str:
    """The code in a model's response: the fenced block that defines `entry_point` (the first
    such block), else the first fenced block, else the whole response."""
    blocks = code_blocks(response)
    if not blocks:
        return response.strip("\n")
    if entry_point is not None:
        defines = re.compile(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\(", re.M)
        for block in blocks:
            if defines.search(block):
                return block
    return blocks[0]


def build_program(conversation: Conversation, response: Any) -> str:
    """The program that grades `response` (a string or a list of parts): the prompt's imports,
    the extracted code, the tests, and the call to ``check``."""
    imports = extract_imports(conversation["messages"][0]["content"])
    code = extract_program(assistant_text(response), conversation["entry_point"])
    return f"{imports}\n\n{code}\n\n{conversation['test']}\ncheck({conversation['entry_point']})\n"


def row_to_conversation(row: dict[str, Any]) -> Conversation:
    """The conversation of one HumanEval row (see the module docstring)."""
    return {
        "messages": [
            {"role": "user", "content": row["prompt"]},
            {"role": "assistant", "content": f"{row['prompt']}\n{row['canonical_solution']}"},
        ],
        "entry_point": row["entry_point"],
        "test": row["test"],
    }


class HumanEval(Task):
    """HumanEval (generative): 164 Python problems graded by running their tests in a sandbox.

    `timeout` is the time each program may run; `pool` the sandbox pool that runs them
    (default: ``chattasks.sandbox.default_pool()``, started on first use).
    """

    def __init__(
        self,
        *,
        data_dir: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        pool: SandboxPool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        self.timeout = timeout
        self.pool = pool
        self.rows = load_rows(DATASET, "openai_humaneval", "test", data_dir=data_dir)

    @property
    def eval_type(self) -> str:
        """'generative': the model writes the code."""
        return "generative"

    def num_examples(self) -> int:
        return len(self.rows)

    def get_example(self, index: int) -> Conversation:
        return row_to_conversation(self.rows[index])

    def run(self, conversation: Conversation, assistant_response: Any) -> SandboxResult:
        """Run the response against the problem's tests; the full sandbox result."""
        return self._pool().run(build_program(conversation, assistant_response), timeout=self.timeout)

    def run_many(
        self, conversations: Sequence[Conversation], assistant_responses: Sequence[Any]
    ) -> list[SandboxResult]:
        """Run many responses in parallel (one per conversation, in order)."""
        if len(conversations) != len(assistant_responses):
            raise ValueError(
                f"got {len(conversations)} conversations but {len(assistant_responses)} responses"
            )
        programs = [build_program(c, r) for c, r in zip(conversations, assistant_responses)]
        return self._pool().run_many(programs, timeout=self.timeout)

    def evaluate(self, conversation: Conversation, assistant_response: Any) -> int:
        """1 when the response's code passes every test of the problem, else 0."""
        return int(self.run(conversation, assistant_response).passed)

    def evaluate_many(
        self, conversations: Sequence[Conversation], assistant_responses: Sequence[Any]
    ) -> list[int]:
        """`evaluate` for many responses at once, run in parallel."""
        return [int(result.passed) for result in self.run_many(conversations, assistant_responses)]

    def _pool(self) -> SandboxPool:
        return self.pool if self.pool is not None else default_pool()
