"""MMLU: four-choice questions on 57 subjects, from elementary mathematics to professional law.

Dataset: ``cais/mmlu`` -- https://huggingface.co/datasets/cais/mmlu -- config ``all`` with splits
``dev`` (285 rows), ``validation`` (1,531), ``test`` (14,042) and ``auxiliary_train`` (99,842
questions from ARC, MCTest, OBQA and RACE, for fine-tuning). The auxiliary set is reached as
nanochat documents it, ``MMLU(subset="auxiliary_train", split="train")``, or as nanochat now
spells it, ``MMLU(subset="all", split="auxiliary_train")``; both read the ``all`` config's
``auxiliary_train`` split. This raw row::

    {"question": "Find the degree for the given field extension Q(sqrt(2), sqrt(3), sqrt(18)) over Q.",
     "subject": "abstract_algebra", "choices": ["0", "4", "2", "6"], "answer": 1}

becomes::

    {"messages": [
        {"role": "user", "content": "Multiple Choice question: Find the degree for the given field extension "
                                    "Q(sqrt(2), sqrt(3), sqrt(18)) over Q.\\n- 0=A\\n- 4=B\\n- 2=C\\n- 6=D\\n"
                                    "\\nRespond only with the letter of the correct answer."},
        {"role": "assistant", "content": "B"}],
     "subject": "abstract_algebra",
     "letters": ("A", "B", "C", "D"),
     "question": "Find the degree for ...", "choices": ["0", "4", "2", "6"]}

``question`` and ``choices`` are chattasks' additions (raw texts for the loglik scorer); the other
keys are exactly nanochat's.

Grading is ``chattasks.tasks.multiple_choice``'s: the response stripped of surrounding
whitespace must be the gold letter; anything outside A-D is an extraction failure scoring 0.
"""

from __future__ import annotations

from typing import Any

from chattasks.data import load_rows
from chattasks.errors import DataError
from chattasks.render import render_mc
from chattasks.task import Conversation, LoglikRequest
from chattasks.tasks.multiple_choice import MultipleChoiceTask, question_and_choices

DATASET = "cais/mmlu"
LETTERS = ("A", "B", "C", "D")
# (subset, split) as a user writes them -> (config, split) on the Hub
SPLITS = {
    ("all", "dev"): ("all", "dev"),
    ("all", "validation"): ("all", "validation"),
    ("all", "test"): ("all", "test"),
    ("all", "auxiliary_train"): ("all", "auxiliary_train"),
    ("auxiliary_train", "train"): ("all", "auxiliary_train"),
}
SUBJECTS = tuple(
    """
    abstract_algebra anatomy astronomy business_ethics clinical_knowledge college_biology college_chemistry
    college_computer_science college_mathematics college_medicine college_physics computer_security
    conceptual_physics econometrics electrical_engineering elementary_mathematics formal_logic global_facts
    high_school_biology high_school_chemistry high_school_computer_science high_school_european_history
    high_school_geography high_school_government_and_politics high_school_macroeconomics
    high_school_mathematics high_school_microeconomics high_school_physics high_school_psychology
    high_school_statistics high_school_us_history high_school_world_history human_aging human_sexuality
    international_law jurisprudence logical_fallacies machine_learning management marketing medical_genetics
    miscellaneous moral_disputes moral_scenarios nutrition philosophy prehistory professional_accounting
    professional_law professional_medicine professional_psychology public_relations security_studies
    sociology us_foreign_policy virology world_religions""".split()
)


def hub_split(subset: str, split: str) -> tuple[str, str]:
    """The Hub (config, split) that ``MMLU(subset, split)`` reads; ValueError lists the valid pairs."""
    try:
        return SPLITS[(subset, split)]
    except (KeyError, TypeError):
        valid = ", ".join(f"subset={a!r} split={b!r}" for a, b in SPLITS)
        raise ValueError(f"MMLU has no subset={subset!r} split={split!r}; valid: {valid}") from None


def row_to_conversation(row: dict[str, Any]) -> Conversation:
    """The conversation of one MMLU row: the rendered question, then the gold letter."""
    choices, answer = row["choices"], row["answer"]
    if len(choices) != len(LETTERS) or answer not in range(len(LETTERS)):
        raise DataError(
            f"MMLU row {row['question'][:60]!r}: expected 4 choices and answer 0-3, "
            f"got {len(choices)} choices and answer {answer!r}"
        )
    return {
        "messages": [
            {"role": "user", "content": render_mc(row["question"], LETTERS, choices)},
            {"role": "assistant", "content": LETTERS[answer]},
        ],
        "subject": row["subject"],
        "letters": LETTERS,
        "question": row["question"],  # question and choices: chattasks' additions, for loglik scoring
        "choices": list(choices),
    }


class MMLU(MultipleChoiceTask):
    """MMLU questions (categorical); see the module docstring for the valid ``subset``/``split`` pairs."""

    letters = LETTERS
    groups = SUBJECTS

    def __init__(self, subset: str, split: str, *, data_dir: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        config, hub_name = hub_split(subset, split)
        self.subset, self.split = subset, split
        self.rows = load_rows(DATASET, config, hub_name, data_dir=data_dir)

    def num_examples(self) -> int:
        return len(self.rows)

    def get_example(self, index: int) -> Conversation:
        return row_to_conversation(self.rows[index])

    def loglik_request(self, conversation: Conversation) -> LoglikRequest:
        """lm-eval's ``mmlu`` format: a header naming the subject, the question with lettered choices,
        ``"Answer:"``; the continuations are the letters (one character each: acc_norm equals acc)."""
        question, choices = question_and_choices(self, conversation)
        subject = str(conversation.get("subject", "")).replace("_", " ")
        header = f"The following are multiple choice questions (with answers) about {subject}.\n\n"
        lines = "".join(f"\n{letter}. {choice}" for letter, choice in zip(LETTERS, choices))
        return LoglikRequest(
            f"{header}{question.strip()}{lines}\nAnswer:",
            [f" {letter}" for letter in LETTERS],
            [1] * len(LETTERS),
        )
