"""The wire codec: decoders never raise, say in words what is wrong, and dead letters keep the raw value."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from router.models import DeadLetter, GridSignal, RegionStatus, Request
from router.plan import Plan
from router.problems import Problem
from router.topology import load_topology
from streams.codec import (
    RAW_PREFIX_BYTES,
    check_region,
    check_request_ids,
    dead_letter,
    decode_request,
    decode_signal,
    decode_status,
    encode,
)

MAX = 65536
GOOD_REQUEST: dict[str, Any] = {
    "request_id": "req-1",
    "origin": "fe-frankfurt",
    "latency_budget_ms": 100.0,
    "energy_wh": 0.5,
}
GOOD_SIGNAL: dict[str, Any] = {"region": "aws:eu-north-1", "ts": 1.0, "price_usd_per_mwh": 40.0}
GOOD_STATUS: dict[str, Any] = {"region": "aws:eu-north-1", "ts": 1.0, "healthy": True}
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _req(**changes: Any) -> bytes:
    """GOOD_REQUEST with some fields changed (None removes a field), as JSON bytes."""
    body = {**GOOD_REQUEST, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


@pytest.fixture(scope="module")
def plan() -> Plan:
    """The plan of the bundled topology."""
    return Plan(load_topology())


REQUEST_CASES: list[tuple[str, bytes | None, str | None, str]] = [
    ("null value", None, None, "no value"),
    ("empty", b"", None, "empty"),
    ("blank", b" \n ", None, "empty"),
    ("not utf-8", b'{"request_id": "\xff"}', None, "not UTF-8"),
    ("not json", b"{request_id: 1}", None, "not valid JSON"),
    ("trailing garbage", b'{"a": 1} x', None, "not valid JSON"),
    ("NaN", b'{"latency_budget_ms": NaN}', None, "not valid JSON"),
    ("infinite number", b'{"latency_budget_ms": 1e400}', None, "not valid JSON"),
    ("deep nesting", b"[" * 5000 + b"]" * 5000, None, "nested deeper than 1024 levels"),
    ("array", b"[1, 2]", None, "an array, not a JSON object"),
    ("string", b'"req"', None, "a string, not a JSON object"),
    ("json null", b"null", None, "null, not a JSON object"),
    ("number", b"12", None, "a number, not a JSON object"),
    ("oversized", _req(tenant="x" * MAX), None, f"more than the limit of {MAX} bytes"),
    ("missing id", _req(request_id=None), "request_id", "Field required"),
    ("empty id", _req(request_id=""), "request_id", "at least 1 character"),
    ("long id", _req(request_id="r" * 300), "request_id", "at most 256 characters"),
    ("missing origin", _req(origin=None), "origin", "Field required"),
    ("budget zero", _req(latency_budget_ms=0), "latency_budget_ms", "greater than 0"),
    ("budget negative", _req(latency_budget_ms=-5), "latency_budget_ms", "greater than 0"),
    ("budget as text", _req(latency_budget_ms="5"), "latency_budget_ms", "valid number"),
    ("budget as bool", _req(latency_budget_ms=True), "latency_budget_ms", "valid number"),
    ("energy zero", _req(energy_wh=0), "energy_wh", "greater than 0"),
    ("energy unknown", _req(energy_wh=None), None, "energy unknown"),
    ("huge int tokens", _req(energy_wh=None, tokens=10**30, model="llm-8b"), "tokens", "valid integer"),
    ("u64 tokens", _req(energy_wh=None, tokens=2**64 - 1, model="llm-8b"), "tokens", "less than or equal"),
    ("pinned without region", _req(state_pinned=True), None, "state_region is missing"),
    ("jurisdictions as text", _req(allowed_jurisdictions="EU"), "allowed_jurisdictions", "valid list"),
    ("jurisdiction not text", _req(allowed_jurisdictions=[1]), "allowed_jurisdictions[1]", "valid string"),
    ("negative state bytes", _req(state_bytes=-1), "state_bytes", "greater than or equal to 0"),
    ("negative ts", _req(ts=-1), "ts", "greater than or equal to 0"),
]


@pytest.mark.parametrize(("case", "raw", "field", "words"), REQUEST_CASES, ids=[c[0] for c in REQUEST_CASES])
def test_request_rejections(case: str, raw: bytes | None, field: str | None, words: str) -> None:
    """Each kind of bad request is Problem with the pydantic field at fault and the reason in words."""
    got = decode_request(raw, MAX)
    assert isinstance(got, Problem), case
    assert got.field == field
    assert words in got.error


SIGNAL_CASES: list[tuple[str, dict[str, Any], str | None, str]] = [
    ("no value", {"region": "r", "ts": 1.0}, None, "carries no value"),
    ("missing region", {"ts": 1.0, "pue": 1.1}, "region", "Field required"),
    ("missing ts", {"region": "r", "pue": 1.1}, "ts", "Field required"),
    ("price too high", {**GOOD_SIGNAL, "price_usd_per_mwh": 1e7}, "price_usd_per_mwh", "less than or equal"),
    (
        "negative carbon",
        {**GOOD_SIGNAL, "marginal_gco2_per_kwh": -1},
        "marginal_gco2_per_kwh",
        "greater than",
    ),
    ("pue below 1", {**GOOD_SIGNAL, "pue": 0.5}, "pue", "greater than or equal to 1"),
    ("validity zero", {**GOOD_SIGNAL, "valid_for_s": 0}, "valid_for_s", "greater than 0"),
    ("price as text", {**GOOD_SIGNAL, "price_usd_per_mwh": "40"}, "price_usd_per_mwh", "valid number"),
]


@pytest.mark.parametrize(("case", "body", "field", "words"), SIGNAL_CASES, ids=[c[0] for c in SIGNAL_CASES])
def test_signal_rejections(case: str, body: dict[str, Any], field: str | None, words: str) -> None:
    """Each kind of bad grid signal is Problem with its field and reason."""
    got = decode_signal(orjson.dumps(body))
    assert isinstance(got, Problem), case
    assert (got.field, words in got.error) == (field, True), got.error


STATUS_CASES: list[tuple[str, dict[str, Any], str | None, str]] = [
    ("missing region", {"ts": 1.0}, "region", "Field required"),
    ("negative capacity", {**GOOD_STATUS, "capacity_kw": -1}, "capacity_kw", "greater than or equal to 0"),
    ("healthy as text", {**GOOD_STATUS, "healthy": "yes"}, "healthy", "valid boolean"),
    ("ts as text", {**GOOD_STATUS, "ts": "now"}, "ts", "valid number"),
]


@pytest.mark.parametrize(("case", "body", "field", "words"), STATUS_CASES, ids=[c[0] for c in STATUS_CASES])
def test_status_rejections(case: str, body: dict[str, Any], field: str | None, words: str) -> None:
    """Each kind of bad region status is Problem with its field and reason."""
    got = decode_status(orjson.dumps(body))
    assert isinstance(got, Problem), case
    assert (got.field, words in got.error) == (field, True), got.error


def test_valid_messages_decode() -> None:
    """Well-formed messages decode into their models, with defaults applied."""
    req = decode_request(_req(tokens=400, model="llm-8b", energy_wh=None), MAX)
    assert isinstance(req, Request)
    assert req.tokens == 400
    assert req.payload_bytes == 0
    assert isinstance(decode_signal(orjson.dumps(GOOD_SIGNAL)), GridSignal)
    assert isinstance(decode_status(orjson.dumps(GOOD_STATUS)), RegionStatus)


def test_size_is_checked_before_parsing() -> None:
    """A message one byte over the limit is refused for its size even when it is invalid JSON."""
    got = decode_request(b"{" * 257, 256)
    assert isinstance(got, Problem)
    assert "257 bytes" in got.error
    assert isinstance(decode_request(_req(), len(_req())), Request)


def test_unknown_ids_are_left_to_the_plan(plan: Plan) -> None:
    """check_request_ids names the unknown origin, state_region or model; known ids pass."""
    ok = decode_request(_req(state_region=plan.region_ids[-1]), MAX)
    assert isinstance(ok, Request)
    assert check_request_ids(ok, plan) is None
    cases: list[tuple[dict[str, Any], str]] = [
        ({"origin": "fe-mars"}, "origin"),
        ({"state_region": "mars-1"}, "state_region"),
        ({"energy_wh": None, "tokens": 5, "model": "gpt-99"}, "model"),
    ]
    for change, field in cases:
        req = decode_request(_req(**change), MAX)
        assert isinstance(req, Request)
        rej = check_request_ids(req, plan)
        assert rej is not None
        assert rej.field == field
        assert f"unknown {field}" in rej.error
        assert "expected" in rej.error


def test_check_region(plan: Plan) -> None:
    """check_region accepts a topology region and rejects another with field 'region'."""
    assert check_region(plan.region_ids[0], plan) is None
    rej = check_region("mars-1", plan)
    assert rej is not None
    assert rej.field == "region"
    assert "unknown region; received 'mars-1'" in rej.error


def _letter(raw: bytes | None, **kw: Any) -> DeadLetter:
    out = dead_letter(raw, Problem.of("bad", "f"), topic="inference.requests", partition=3, offset=42, **kw)
    return DeadLetter.model_validate(orjson.loads(out))


def test_dead_letter_keeps_utf8_text() -> None:
    """A UTF-8 value is kept as text, with the reason, field and position of the message."""
    letter = _letter('{"x": "Zürich"}'.encode())
    assert (letter.raw, letter.raw_encoding) == ('{"x": "Zürich"}', "utf-8")
    assert (letter.error, letter.field, letter.topic, letter.partition, letter.offset) == (
        "bad",
        "f",
        "inference.requests",
        3,
        42,
    )


def test_dead_letter_base64_for_binary() -> None:
    """A value that is not UTF-8 is kept as base64 and decodes back to the same bytes."""
    raw = b"\xff\xfe\x00binary"
    letter = _letter(raw)
    assert letter.raw_encoding == "base64"
    assert base64.b64decode(letter.raw) == raw


def test_dead_letter_of_a_null_value() -> None:
    """A null (tombstone) value becomes an empty raw text."""
    letter = _letter(None)
    assert (letter.raw, letter.raw_encoding) == ("", "utf-8")


def test_dead_letter_truncates_oversized_values() -> None:
    """A value above max_raw_bytes keeps its first RAW_PREFIX_BYTES bytes and the error says so."""
    raw = b"a" * (RAW_PREFIX_BYTES - 1) + "é".encode() * 5000
    letter = _letter(raw, max_raw_bytes=8192)
    assert letter.raw_encoding == "utf-8"  # the cut did not split "é" into invalid UTF-8
    assert raw.startswith(letter.raw.encode())
    assert len(letter.raw.encode()) == RAW_PREFIX_BYTES - 1
    assert f"first {RAW_PREFIX_BYTES} of {len(raw)} bytes" in letter.error


@FUZZ
@given(st.binary(max_size=3000))
def test_dead_letter_round_trip(raw: bytes) -> None:
    """Any value up to max_raw_bytes comes back byte for byte from its dead letter."""
    letter = _letter(raw)
    back = base64.b64decode(letter.raw) if letter.raw_encoding == "base64" else letter.raw.encode()
    assert back == raw


def _check(model: type[BaseModel], got: object, raw: bytes) -> None:
    """The decoder's answer is the model or a Problem with words and, if any, a field of the model or an
    unknown key of the message, named as such."""
    assert isinstance(got, model | Problem)
    if isinstance(got, Problem):
        assert got.error.strip()
        head = None if got.field is None else got.field.split(".")[0].split("[")[0]
        if head is not None and head not in model.model_fields:
            assert got.error.startswith("unknown key")
            assert head in orjson.loads(raw)


def _decode_all(raw: bytes) -> None:
    _check(Request, decode_request(raw, MAX), raw)
    _check(GridSignal, decode_signal(raw), raw)
    _check(RegionStatus, decode_status(raw), raw)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=2**63 - 2, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
    | st.text(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3)  # lone surrogates
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=30,
)
FIELD_NAMES = st.sampled_from(
    sorted({*Request.model_fields, *GridSignal.model_fields, *RegionStatus.model_fields, "extra"})
)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    """Random bytes give a model or a Problem, never an exception."""
    _decode_all(raw)


@FUZZ
@given(JSON_VALUES)
def test_random_json_never_raises(value: object) -> None:
    """Any JSON value (huge ints, unicode and lone surrogates included) gives a model or a Problem."""
    _decode_all(json.dumps(value).encode())
    _decode_all(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.dictionaries(FIELD_NAMES, JSON_VALUES, max_size=10), st.dictionaries(FIELD_NAMES, JSON_SCALARS))
def test_messages_with_contract_fields_never_raise(noise: dict[str, Any], scalars: dict[str, Any]) -> None:
    """Valid messages with random values in the contract's fields give a model or a field-naming Problem."""
    for base in (GOOD_REQUEST, GOOD_SIGNAL, GOOD_STATUS):
        _decode_all(json.dumps({**base, **noise}).encode())
        _decode_all(json.dumps({**base, **scalars}).encode())


@FUZZ
@given(st.integers(min_value=1, max_value=6000), st.sampled_from(["[", '{"a":']))
def test_deep_nesting_never_raises(depth: int, opener: str) -> None:
    """Nesting of any depth, past orjson's 1024 limit too, gives a model or a Problem."""
    closer = "]" if opener == "[" else "}"
    _decode_all(
        json.dumps({**GOOD_REQUEST, "tenant": None}).encode()[:-1]
        + b', "x": '
        + (opener * depth + "1" + closer * depth).encode()
        + b"}"
    )


@FUZZ
@given(st.integers(min_value=-(10**400), max_value=10**400), FIELD_NAMES)
def test_huge_numbers_never_raise(number: int, field: str) -> None:
    """Integers far beyond 64 bits in any field give a model or a Problem."""
    _decode_all(json.dumps({**GOOD_REQUEST, **GOOD_SIGNAL, field: number}).encode())


def test_encode_is_compact_json_with_numpy() -> None:
    """encode writes compact UTF-8 JSON and accepts NumPy scalars from the kernel."""
    out = encode({"region": "aws:eu-north-1", "score_usd": np.float64(0.25), "n": np.int64(3)})
    assert out == b'{"region":"aws:eu-north-1","score_usd":0.25,"n":3}'


def test_default_limit_matches_the_settings_default() -> None:
    """The decoders' default size limit is the default of Settings.max_message_bytes."""
    from streams.codec import DEFAULT_MAX_BYTES
    from streams.settings import Settings

    assert Settings.model_fields["max_message_bytes"].default == DEFAULT_MAX_BYTES


def test_every_refusal_is_one_problem_type_cut_the_same_way(tmp_path: Any) -> None:
    """A message, a provider payload and a file line that are refused all give a router.problems.Problem,
    whose received value is cut at MAX_SHOWN characters by the same rule."""
    from router.errors import InputError
    from router.io import read_jsonl
    from router.models import GridSignal
    from router.problems import MAX_SHOWN, shown
    from router.providers import parse_watttime

    long_region = "r" * 1000
    msg = decode_signal(orjson.dumps({"region": long_region, "ts": 1.0, "price_usd_per_mwh": 1.0}), 10_000)
    provider = parse_watttime(orjson.dumps({"data": "not a list " + "x" * 1000}), {}, 1.0)
    path = tmp_path / "s.jsonl"
    path.write_bytes(orjson.dumps({"region": long_region, "ts": 1.0}) + b"\n")
    with pytest.raises(InputError) as err:
        read_jsonl(path, GridSignal)
    refusals = [msg, provider, err.value.problems[0]]
    for p in refusals:
        assert isinstance(p, Problem)
    cut = shown(long_region)
    assert len(cut) == MAX_SHOWN
    assert cut in msg.error
    assert cut in err.value.problems[0].error
