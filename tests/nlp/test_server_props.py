"""Property tests: whatever JSON (or bytes) a client posts to /v1/chat/completions, the server
answers 2xx or a clean 4xx JSON error, never a 500, a hang or a traceback, and keeps serving."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TIMEOUT = 30  # seconds: a reply takes well under one; a hang fails the example


class _Errors(logging.Handler):
    """Collects ERROR records from the server and uvicorn (a traceback would land here)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def served(tiny_model_dir):
    from deepapps_nlp import Chat
    from deepapps_nlp.loadtest import serve_in_thread
    from deepapps_nlp.server import ServerLimits, create_app

    chat = Chat(str(tiny_model_dir), "cpu", temperature=0, max_tokens=3)
    app = create_app({"tiny": chat}, limits=ServerLimits(max_tokens=4, max_body_bytes=65_536))
    errors = _Errors()
    loggers = [logging.getLogger(n) for n in ("deepapps_nlp.server", "uvicorn.error", "uvicorn")]
    for lg in loggers:
        lg.addHandler(errors)
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=TIMEOUT) as client:
        yield client, errors, app.state.service
    for lg in loggers:
        lg.removeHandler(errors)


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
texts = st.text(max_size=80)
valid_messages = st.tuples(
    st.lists(
        st.fixed_dictionaries(
            {
                "role": st.sampled_from(["user", "system", "assistant", "developer"]),
                "content": texts
                | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": texts}), max_size=2),
            }
        ),
        max_size=3,
    ),
    texts,
).map(lambda pair: [*pair[0], {"role": "user", "content": pair[1]}])
VALID_FIELDS = {
    "temperature": st.floats(0, 2),
    "top_p": st.floats(0.01, 1),
    "max_tokens": st.integers(1, 4),
    "max_completion_tokens": st.integers(1, 4),
    "min_tokens": st.integers(0, 6),
    "stop": st.text(min_size=1, max_size=6)
    | st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=3),
    "seed": st.integers(0, 2**63),
    "n": st.just(1),
    "stream": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "user": texts,
}


@st.composite
def chat_bodies(draw):
    """A valid request, then (half the time) one field replaced by any JSON value or dropped."""
    body = {"model": "tiny", "messages": draw(valid_messages)}
    for key in draw(st.lists(st.sampled_from(sorted(VALID_FIELDS)), unique=True, max_size=5)):
        body[key] = draw(VALID_FIELDS[key])
    if draw(st.booleans()):
        key = draw(st.sampled_from(["model", "messages", *sorted(VALID_FIELDS)]))
        if draw(st.integers(0, 4)) == 0:
            body.pop(key, None)
        else:
            body[key] = draw(json_values)
    msgs = body.get("messages")
    if isinstance(msgs, list) and msgs and draw(st.integers(0, 3)) == 0:  # or corrupt one message
        i = draw(st.integers(0, len(msgs) - 1))
        field = draw(st.sampled_from(["role", "content", None]))
        msgs[i] = draw(json_values) if field is None else {**msgs[i], field: draw(json_values)}
    return body


def _check(client, errors, service, body: bytes, streamed: bool) -> None:
    r = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    event(f"status {r.status_code}")
    assert r.status_code < 500, r.text
    assert "Traceback" not in r.text
    if r.status_code >= 400:
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and isinstance(err["message"], str)
        assert len(err["message"]) <= 600
    elif streamed:
        lines = [line for line in r.text.splitlines() if line]
        assert lines[-1] == "data: [DONE]", r.text
        assert not any('"error"' in line for line in lines)
    else:
        assert isinstance(r.json()["choices"][0]["message"]["content"], str)
    assert errors.records == [], [rec.getMessage() for rec in errors.records]
    deadline = time.monotonic() + 5  # a stream's admission is released just after its last byte
    while service.in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert service.in_flight == 0


@SETTINGS
@given(body=chat_bodies())
def test_chat_shaped_bodies_get_2xx_or_a_clean_4xx(served, body):
    client, errors, service = served
    raw = json.dumps(body).encode()
    _check(client, errors, service, raw, streamed=body.get("stream") is True)


@SETTINGS
@given(body=json_values)
def test_any_json_value_gets_a_clean_4xx(served, body):
    client, errors, service = served
    _check(client, errors, service, json.dumps(body).encode(), streamed=False)


@SETTINGS
@given(raw=st.binary(max_size=200))
def test_any_bytes_get_a_clean_answer(served, raw):
    client, errors, service = served
    _check(client, errors, service, raw, streamed=False)
