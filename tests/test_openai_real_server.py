"""The openai backend against a real OpenAI-compatible server: ``transformers serve`` on loopback.

The server (``tests/transformers_serve.py``) serves the embedded SmolLM2-135M-Instruct from the
converted copy the hf backend keeps (``hf_model.converted_dir``), on CPU in float32, one request
at a time (it has no batching without continuous batching), no log-probabilities (it accepts
``logprobs`` and ignores it) and no prompt echo. It is started once for the module and once
more by the restart test. Budget on 2 busy CPU cores: 2-4 min in all (measured 2:09 and 4:08),
of which ~1 min converts the model (once per session, shared with test_hf_backend.py) and
10-60 s starts a server.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from transformers_serve import TransformersServe, serve_available

from chattasks.errors import BackendError
from chattasks.eval.backends.base import GenerationConfig
from chattasks.eval.backends.openai import OpenAIBackend
from chattasks.eval.journal import read_records
from chattasks.eval.scorers.base import prompt_of
from chattasks.tasks.arc import ARC
from chattasks.tasks.gsm8k import GSM8K

pytestmark = [pytest.mark.slow, pytest.mark.model]
LIMIT = 3
MAX_NEW_TOKENS = 48


@pytest.fixture(scope="module")
def hf():
    """The hf backend on the embedded model, one prompt per batch (no padding), CPU float32."""
    if not serve_available():
        pytest.skip("needs transformers serve: pip install 'chattasks[serve]'")
    hf_backend = pytest.importorskip("chattasks.eval.backends.hf")
    try:
        backend = hf_backend.HFBackend(dtype="float32", device="cpu", batch_size=1)
    except BackendError as exc:
        pytest.skip(f"the embedded model is not available: {exc}")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def server(hf, tmp_path_factory):
    from chattasks.eval.backends.hf_model import converted_dir, default_model_path, is_complete_copy

    folder = converted_dir(default_model_path(), "float32")
    assert folder is not None and is_complete_copy(folder), "the hf backend keeps a converted copy"
    serve = TransformersServe(folder, tmp_path_factory.mktemp("serve") / "server.log")
    with serve:
        yield serve


def run(server: TransformersServe, tasks: list[str], out: Path, hub_dir: Path, limit: int = LIMIT, **options):
    from chattasks.eval.runner import evaluate_model

    return evaluate_model(
        server.folder,
        tasks,
        backend="openai",
        base_urls=[server.url],
        limit=limit,
        generation=GenerationConfig(max_new_tokens=MAX_NEW_TOKENS),
        output=out,
        data_dir=hub_dir,
        progress=False,
        **options,
    )


def test_arc_and_gsm8k_through_transformers_serve_agree_with_the_hf_backend(server, hf, hub_dir, tmp_path):
    results = run(server, ["ARC-Easy", "GSM8K"], tmp_path / "run", hub_dir)  # default settings
    tasks = results.to_dict()["tasks"]
    assert tasks["ARC-Easy"]["samples"] == tasks["GSM8K"]["samples"] == LIMIT
    assert tasks["ARC-Easy"]["methods"] == {"completion": LIMIT}  # no logprobs: the 1-token reply
    model = json.loads((tmp_path / "run" / "results.json").read_text())["model"]
    assert model["capabilities"]["chat"] is True and model["capabilities"]["logprobs"] == "ignored"
    assert model["retries"] == {} and model["requests"] == 1 + 2 * LIMIT  # the probe, then each question once

    # greedy replies: the same as the hf backend's, token for token (same weights, template and stop token)
    gsm8k = GSM8K("main", "test", data_dir=hub_dir)
    prompts = [prompt_of(gsm8k[i]) for i in range(LIMIT)]
    served = {
        r.index: r.response
        for r in read_records(tmp_path / "run" / "samples" / "GSM8K.jsonl").records.values()
    }
    local = hf.generate(prompts, GenerationConfig(max_new_tokens=MAX_NEW_TOKENS))
    assert [served[i] for i in range(LIMIT)] == [replies[0] for replies in texts(local)]

    # ARC: the server's 1-token replies are the hf backend's; the journal holds each as its letter
    arc = ARC("ARC-Easy", "test", data_dir=hub_dir)
    arc_prompts = [prompt_of(arc[i]) for i in range(LIMIT)]
    one_token = GenerationConfig(max_new_tokens=1)
    with OpenAIBackend(server.folder, base_urls=server.url) as direct:
        served_replies = direct.generate(arc_prompts, one_token)
    assert texts(served_replies) == texts(hf.generate(arc_prompts, one_token))
    letters = {
        r.index: r.response
        for r in read_records(tmp_path / "run" / "samples" / "ARC-Easy.jsonl").records.values()
    }
    for i, (reply,) in enumerate(texts(served_replies)):
        assert letters[i] == (reply.strip() if reply.strip() in arc[i]["letters"] else "")


def test_a_run_whose_server_is_killed_midway_ends_in_one_line_and_resumes_to_every_sample_once(
    server, hub_dir, tmp_path
):
    out = tmp_path / "run"
    journal = out / "samples" / "ARC-Easy.jsonl"
    rows = 5
    # one question per batch, so each is journaled as soon as it is answered; a short give_up_after (a
    # server answering nothing for 15 s ends the run: long enough for one reply on a busy 2-core CI machine)
    options = {"limit": rows, "batch_size": 1, "give_up_after": 15.0, "backoff": 0.2}  # room for a loaded CPU
    killed = threading.Event()

    def kill_after_two_samples() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if journal.is_file() and journal.read_bytes().count(b"\n") >= 2:
                server.stop()
                killed.set()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_after_two_samples)
    watcher.start()
    try:
        with pytest.raises(BackendError) as caught:
            run(server, ["ARC-Easy"], out, hub_dir, **options)
    finally:
        watcher.join()
    assert killed.is_set()
    message = str(caught.value)
    assert "\n" not in message and "--resume" in message and server.url in message
    before = read_records(journal)
    assert 2 <= len(before.records) < rows and before.corrupt == 0

    server.start()  # the same port, as a restarted server's
    results = run(server, ["ARC-Easy"], out, hub_dir, resume=True, **options)
    after = read_records(journal)
    assert sorted(after.records) == [(i, 0) for i in range(rows)]
    assert after.duplicates == 0 and after.corrupt == 0
    assert journal.read_bytes().count(b"\n") == rows  # every sample written exactly once
    summary = results.to_dict()["tasks"]["ARC-Easy"]
    assert summary["samples"] == rows and summary["methods"] == {"completion": rows}
    assert results.complete


def texts(replies) -> list[list[str]]:
    """The texts of ``generate``'s replies (strings or Completions)."""
    return [[getattr(reply, "text", reply) for reply in samples] for samples in replies]
