"""HumanEval: conversations, code extraction, program assembly, and grading in the sandbox."""

from __future__ import annotations

import re
import sys

import pytest

from chattasks.sandbox import Isolation, SandboxPool, Status
from chattasks.sandbox.isolation import works
from chattasks.tasks.humaneval import (
    HumanEval,
    build_program,
    code_blocks,
    extract_imports,
    extract_program,
    row_to_conversation,
)

ROW = {
    "task_id": "HumanEval/34",
    "prompt": '\n\ndef unique(l: list):\n    """Return sorted unique elements in a list"""\n',
    "canonical_solution": "    return sorted(list(set(l)))\n",
    "test": "\n\ndef check(candidate):\n    assert candidate([5, 3, 5, 2]) == [2, 3, 5]\n\n",
    "entry_point": "unique",
}
needs_bwrap = pytest.mark.skipif(
    not works(Isolation.BWRAP, sys.executable), reason="bubblewrap does not work here"
)


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(2) as pool:
        yield pool


@pytest.fixture(scope="module")
def task(hub_dir, pool):
    return HumanEval(data_dir=hub_dir, pool=pool)


# ----- row -> conversation -------------------------------------------------------------------


def test_a_row_becomes_prompt_then_prompt_plus_solution():
    conversation = row_to_conversation(ROW)
    assert conversation == {
        "messages": [
            {"role": "user", "content": ROW["prompt"]},
            {"role": "assistant", "content": ROW["prompt"] + "\n" + ROW["canonical_solution"]},
        ],
        "entry_point": "unique",
        "test": ROW["test"],
    }


# ----- extracting the code -------------------------------------------------------------------


def test_imports_are_the_prompts_top_level_import_statements():
    prompt = (
        'from typing import List\nimport math\n\n\ndef f(x: List[int]) -> int:\n    """from the docs"""\n'
    )
    assert extract_imports(prompt) == "from typing import List\nimport math"
    assert extract_imports("def f():\n    import os\n") == ""
    assert extract_imports("import re\ndef broken(:\n") == "import re"  # unparsable: leading lines


def test_a_response_without_fences_is_the_code_itself():
    assert extract_program("def f():\n    return 1\n") == "def f():\n    return 1"


def test_a_python_fence_is_taken_out_of_the_prose():
    response = "Here you go:\n```python\ndef f():\n    return 1\n```\nHope it helps!"
    assert extract_program(response, "f") == "def f():\n    return 1"


@pytest.mark.parametrize("opening", ["```python", "```py", "```Python3", "```", "  ```python  "])
def test_python_fences_in_all_common_spellings(opening):
    assert code_blocks(f"{opening}\nx = 1\n```") == ["x = 1"]


def test_of_several_blocks_the_one_defining_the_entry_point_wins():
    response = "```python\nimport math\n```\n```python\ndef g():\n    pass\n```\n```python\ndef f(x):\n    return x\n```\n"
    assert extract_program(response, "f") == "def f(x):\n    return x"
    assert extract_program(response, "missing") == "import math"  # none does: the first block


def test_blocks_in_other_languages_are_skipped():
    response = "```bash\npip install x\n```\n```python\ndef f():\n    pass\n```"
    assert code_blocks(response) == ["def f():\n    pass"]


def test_an_unclosed_fence_runs_to_the_end():
    assert code_blocks("```python\ndef f():\n    return 1") == ["def f():\n    return 1"]


def test_a_fence_closed_at_the_end_of_a_line_and_an_indented_block():
    assert code_blocks("```python\nx = 1```") == ["x = 1"]
    assert code_blocks("1. Code:\n   ```python\n   def f():\n       pass\n   ```") == ["def f():\n    pass"]


def test_the_program_is_imports_code_tests_and_the_check_call():
    conversation = row_to_conversation({**ROW, "prompt": "import math\n" + ROW["prompt"]})
    program = build_program(conversation, "```python\ndef unique(l):\n    return sorted(set(l))\n```")
    assert program == (
        "import math\n\ndef unique(l):\n    return sorted(set(l))\n\n" + ROW["test"] + "\ncheck(unique)\n"
    )


def test_a_response_given_as_parts_is_joined():
    conversation = row_to_conversation(ROW)
    parts = [{"type": "text", "text": "def unique(l):\n"}, {"type": "text", "text": "    return 1\n"}]
    assert "def unique(l):\n    return 1" in build_program(conversation, parts)


# ----- the task on the real data -------------------------------------------------------------


def test_the_task_reads_164_generative_problems(task):
    assert task.eval_type == "generative"
    assert task.num_examples() == len(task) == 164
    conversation = task[0]
    assert set(conversation) == {"messages", "entry_point", "test"}
    user, assistant = conversation["messages"]
    assert assistant["content"].startswith(user["content"] + "\n")
    assert f"def {conversation['entry_point']}(" in user["content"]


def test_the_nanochat_import_is_the_same_class():
    from tasks.humaneval import HumanEval as Shim

    assert Shim is HumanEval


def test_a_bad_timeout_is_refused(hub_dir):
    with pytest.raises(ValueError, match="timeout"):
        HumanEval(data_dir=hub_dir, timeout=0)


@needs_bwrap
def test_every_canonical_solution_passes(task):
    conversations = list(task)
    grades = task.evaluate_many(conversations, [c["messages"][1]["content"] for c in conversations])
    assert grades == [1] * 164


@needs_bwrap
def test_every_solution_that_returns_none_fails(task):
    conversations = list(task)
    wrong = [c["messages"][0]["content"] + "    return None\n" for c in conversations]
    results = task.run_many(conversations, wrong)
    assert [r.status for r in results] == [Status.FAILED] * 164


@needs_bwrap
def test_evaluate_grades_one_response_wrapped_in_markdown(task):
    conversation = task[0]
    solution = conversation["messages"][1]["content"]
    assert task.evaluate(conversation, f"Sure:\n```python\n{solution}\n```\nDone.") == 1
    body = re.sub(r"(?s)(def \w+\(.*?\).*?:\n).*", r"\1    pass\n", solution, count=1)
    assert task.evaluate(conversation, f"```python\n{body}```") == 0


@needs_bwrap
def test_run_tells_timeouts_apart_from_wrong_answers(hub_dir, pool):
    task = HumanEval(data_dir=hub_dir, pool=pool, timeout=0.5)
    conversation = task[0]
    entry = conversation["entry_point"]
    slow = f"def {entry}(*args, **kwargs):\n    while True:\n        pass\n"
    wrong = f"def {entry}(*args, **kwargs):\n    return None\n"
    assert [r.status for r in task.run_many([conversation] * 2, [slow, wrong])] == [
        Status.TIMEOUT,
        Status.FAILED,
    ]


def test_run_many_needs_one_response_per_conversation(task):
    with pytest.raises(ValueError, match="responses"):
        task.run_many([task[0], task[1]], ["x"])
