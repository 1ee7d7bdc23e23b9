"""`underdog serve` on the embedded SmolLM2, used through the real openai SDK over loopback."""

import openai
import pytest

from underdog.config import EMBEDDED_MODEL, ModelSpec
from underdog.errors import ModelError
from underdog.llm import LLM
from underdog.serve import create_app
from underdog.store import Store
from underdog.testing import ServerThread


@pytest.fixture(scope="module")
def served(embedded_model_dir):
    with ServerThread(create_app(ModelSpec(model=EMBEDDED_MODEL))) as server:
        yield server


def _api(server: ServerThread, **changes) -> ModelSpec:
    return ModelSpec(provider="openai", model=EMBEDDED_MODEL, base_url=server.url + "/v1", max_retries=1,
                     timeout_s=120, **changes)


def test_openai_backend_talks_to_underdog_serve(served, tmp_path) -> None:
    store = Store(tmp_path / "underdog.db")
    llm = LLM(_api(served), store, stage="test")
    questions = ["What is a building permit?", "How do I renew a driver's license?", "What is zoning?"]
    replies = llm.batch(questions, temperature=0.0, max_tokens=12)
    assert all(r.text and r.output_tokens <= 12 and r.input_tokens > 5 for r in replies)
    assert len({r.text for r in replies}) == 3
    again = LLM(_api(served), store, stage="test")
    assert [r.text for r in again.batch(questions, temperature=0.0, max_tokens=12)] == [r.text for r in replies]
    assert again.http_calls == 0
    # the same greedy request through the local backend gives the same text: the server is the real model
    local = LLM(ModelSpec(model=EMBEDDED_MODEL)).chat(questions[0], temperature=0.0, max_tokens=12)
    assert local.text == replies[0].text


def test_models_list_and_streaming(served) -> None:
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused")
    assert [m.id for m in client.models.list()] == [EMBEDDED_MODEL]
    stream = client.chat.completions.create(model=EMBEDDED_MODEL, stream=True, max_tokens=10, temperature=0,
                                            messages=[{"role": "user", "content": "Say hello."}])
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert len(pieces) > 2 and "".join(pieces).strip()


def test_unknown_model_and_bad_request_are_clear(served) -> None:
    with pytest.raises(ModelError, match="HTTP 404 .*model 'gpt-9' not found"):
        LLM(_api(served).model_copy(update={"model": "gpt-9"})).chat("hi")
    client = openai.OpenAI(base_url=served.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=EMBEDDED_MODEL, messages=[], max_tokens=1)
