"""Safe argument storage: JSON with type tags, never pickle."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import pickle
import sys
from decimal import Decimal
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from queuejob import whitelist_unpickle_global
from queuejob.core import codec
from queuejob.core.errors import ArgumentsTooLargeError, DecodeError
from tests import jobs

CALLS: list[object] = []


@whitelist_unpickle_global
def whitelisted_function(value=None):
    """A whitelisted function: storable, and never called by decoding."""
    CALLS.append(value)
    return value


@whitelist_unpickle_global
class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


def short_id(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:60]}...({len(text)} chars)"


def round_trip(value):
    return codec.loads(codec.dumps(value))


def same(a, b) -> bool:
    """Equal, of the same types all the way down, NaN equal to NaN, -0.0 not 0.0,
    Decimal with its exponent, datetime with its tzinfo and offset."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, Decimal):
        return str(a) == str(b)
    if isinstance(a, dt.datetime):
        return (a.replace(tzinfo=None) == b.replace(tzinfo=None) and a.tzinfo == b.tzinfo
                and a.utcoffset() == b.utcoffset())
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return False
        b_keys = {key: key for key in b}
        return all(same(key, b_keys[key]) and same(a[key], b[key]) for key in a)
    return a == b


def assert_one_line_decode_error(payload) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        codec.loads(payload)
    message = str(caught.value)
    assert message
    assert len(message.splitlines()) == 1, message
    assert "\n" not in message and "\r" not in message
    return caught.value


# -- round trips --------------------------------------------------------------------------

PARIS = ZoneInfo("Europe/Paris")

SIMPLE_VALUES = [
    "", "text", "é ü 漢字 😀", "nul\x00and\u2028separators\n", "__qj__",
    0, 1, -1, 2**63, -(2**100),
    0.0, -0.0, 0.1, -2.5, 1e308, 5e-324, math.inf, -math.inf, math.nan,
    True, False, None,
    [], [1, "a", None], [[[]]],
    (), (1,), (1, (2, (3,))), ([1], {"a": (2,)}),
    {}, {"a": 1, "b": [1, 2]}, {"nested": {"deeper": {"x": (1, 2)}}},
    dt.datetime(2024, 2, 29, 13, 14, 15, 123456),
    dt.datetime(2024, 2, 29, 13, 14, 15, tzinfo=dt.UTC),
    dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
    dt.datetime(2024, 6, 1, 8, 0, tzinfo=dt.timezone(-dt.timedelta(hours=11))),
    dt.datetime(2024, 6, 1, 8, 0, tzinfo=PARIS),
    dt.datetime(2024, 1, 15, 23, 59, 59, 999999, tzinfo=ZoneInfo("America/New_York")),
    dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=PARIS),  # second 02:30 of that night
    dt.datetime.min, dt.datetime.max,
    dt.date(2024, 2, 29), dt.date.min, dt.date.max,
    dt.timedelta(0), dt.timedelta(days=-1, seconds=5, microseconds=7),
    dt.timedelta.max, dt.timedelta.min,
    Decimal("1.10"), Decimal("-0"), Decimal("-1E+5"), Decimal("12345678901234567890.0001"),
    Decimal("Infinity"),
    UUID("12345678-1234-5678-1234-567812345678"),
]


@pytest.mark.parametrize("value", SIMPLE_VALUES, ids=short_id)
def test_allowed_values_round_trip_with_their_types(value):
    assert same(round_trip(value), value)


def test_nan_round_trips():
    assert math.isnan(round_trip(math.nan))
    assert round_trip([math.inf, -math.inf]) == [math.inf, -math.inf]


def test_bool_stays_bool_and_int_stays_int():
    assert round_trip([True, 1, 0, False]) == [True, 1, 0, False]
    assert [type(x) for x in round_trip([True, 1, 1.0])] == [bool, int, float]


def test_a_tuple_stays_a_tuple_and_a_list_a_list():
    value = round_trip({"t": (1, [2, (3,)]), "l": [(), []]})
    assert type(value["t"]) is tuple
    assert type(value["t"][1]) is list
    assert type(value["t"][1][1]) is tuple
    assert type(value["l"][0]) is tuple and type(value["l"][1]) is list


@pytest.mark.parametrize("value", [
    {1: "int", 2.5: "float", None: "none", (1, "x"): "tuple", "s": "str"},
    {dt.date(2024, 1, 1): 1, UUID(int=5): 2, Decimal("1.5"): 3, False: 4},
    {dt.datetime(2024, 1, 1, tzinfo=PARIS): "aware key"},
    {"__qj__": "tuple", "v": [1, 2]},
    {"__qj__": "object", "cls": "subprocess.Popen", "v": {"args": ["true"]}},
    {"outer": {"__qj__": "datetime", "v": "not a date"}},
    {"__qj__": {"__qj__": "x"}, 1: {"__qj__": 1}},
], ids=short_id)
def test_dicts_with_any_keys_round_trip(value):
    assert same(round_trip(value), value)


def test_a_dict_whose_key_is_the_tag_stays_a_dict():
    value = round_trip({"__qj__": "tuple", "v": [1, 2]})
    assert value == {"__qj__": "tuple", "v": [1, 2]}
    assert type(value) is dict


def test_zoneinfo_datetime_keeps_its_zone():
    value = dt.datetime(2024, 7, 14, 12, 0, tzinfo=PARIS)
    decoded = round_trip(value)
    assert isinstance(decoded.tzinfo, ZoneInfo)
    assert decoded.tzinfo.key == "Europe/Paris"
    assert decoded == value
    assert decoded.utcoffset() == dt.timedelta(hours=2)
    # the zone, not only the offset: arithmetic crosses DST like the original would
    winter = decoded + dt.timedelta(days=180)
    assert winter.utcoffset() == dt.timedelta(hours=1)


def test_naive_datetime_stays_naive_and_aware_stays_aware():
    assert round_trip(dt.datetime(2024, 1, 1)).tzinfo is None
    assert round_trip(dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).utcoffset() == dt.timedelta(0)


def test_date_stays_a_date_not_a_datetime():
    assert type(round_trip(dt.date(2024, 1, 1))) is dt.date


def test_ambiguous_local_time_keeps_its_fold():
    second = dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=PARIS)
    decoded = round_trip(second)
    assert decoded.fold == 1
    assert decoded.utcoffset() == dt.timedelta(hours=1)


@pytest.mark.parametrize("value", [
    dt.datetime(1, 1, 1, 0, 0, tzinfo=ZoneInfo("Asia/Tokyo")),
    dt.datetime.max.replace(tzinfo=ZoneInfo("America/New_York")),
], ids=["0001-01-01-Asia/Tokyo", "datetime.max-America/New_York"])
def test_aware_datetime_at_the_ends_of_the_calendar_round_trips(value):
    # encoding accepts it, so decoding must give it back (a stored job whose
    # arguments cannot be decoded fails)
    assert same(round_trip(value), value)


def test_nonexistent_local_time_keeps_its_wall_clock_and_offset():
    # 02:30 does not exist in Paris on 2024-03-31 (clocks jump from 02:00 to 03:00);
    # Python still gives it an offset, and a stored argument must come back as given
    value = dt.datetime(2024, 3, 31, 2, 30, tzinfo=PARIS)
    decoded = round_trip(value)
    assert (decoded.hour, decoded.minute) == (2, 30)
    assert decoded.utcoffset() == value.utcoffset()


def test_decimal_keeps_its_precision():
    assert str(round_trip(Decimal("1.10"))) == "1.10"
    assert str(round_trip(Decimal("0E-7"))) == "0E-7"


def test_registered_job_function_round_trips_as_itself():
    assert round_trip(jobs.add) is jobs.add
    assert round_trip([jobs.export, {"f": jobs.noop}]) == [jobs.export, {"f": jobs.noop}]


def test_whitelisted_dataclass_round_trips():
    value = round_trip(jobs.Point(1, 2))
    assert type(value) is jobs.Point
    assert value == jobs.Point(1, 2)


def test_whitelisted_plain_class_round_trips_with_its_state():
    box = jobs.Box([1, (2, 3), {"when": dt.date(2024, 1, 1)}, jobs.Point(3, 4)])
    value = round_trip(box)
    assert type(value) is jobs.Box
    assert value == box
    assert type(value.value[1]) is tuple


def test_whitelisted_function_and_class_objects_round_trip_as_themselves():
    CALLS.clear()
    assert round_trip(whitelisted_function) is whitelisted_function
    assert round_trip(jobs.Box) is jobs.Box
    assert round_trip(jobs.Point) is jobs.Point
    assert CALLS == []


def test_whitelisted_enum_round_trips():
    assert round_trip(Color.GREEN) is Color.GREEN
    assert round_trip([Color.RED]) == [Color.RED]


def test_whitelist_is_usable_as_a_decorator_and_returns_its_argument():
    assert whitelist_unpickle_global(jobs.Box) is jobs.Box
    assert whitelisted_function(3) == 3


def test_encoding_is_canonical_json():
    one = codec.dumps({"b": 1, "a": [1.5, None, True]})
    other = codec.dumps({"a": [1.5, None, True], "b": 1})
    assert one == other
    assert json.loads(one) == {"a": [1.5, None, True], "b": 1}


def test_no_pickle_in_the_encoding():
    text = codec.dumps([jobs.Point(1, 2), jobs.Box({"x": (1,)}), dt.date(2024, 1, 1)])
    json.loads(text)  # plain JSON text
    assert text.isprintable()


# -- property: nested allowed values --------------------------------------------------------

#: zones with unusual offsets and DST rules (a fixed set: probing every zone is slow)
ZONES = [ZoneInfo(key) for key in (
    "UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata",
    "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns", "Pacific/Kiritimati",
    "Africa/Casablanca", "Europe/Dublin", "America/Sao_Paulo", "Antarctica/Troll",
)]


def aware_or_naive_datetimes():
    zones = st.one_of(
        st.none(),
        st.sampled_from(ZONES),
        # fixed offsets in whole seconds (as in tz databases; sub-second offsets are not kept)
        st.integers(-86_399, 86_399).map(lambda s: dt.timezone(dt.timedelta(seconds=s))),
    )
    # the two ends of the calendar and nonexistent local times have their own tests above
    return st.datetimes(min_value=dt.datetime(2, 1, 1), max_value=dt.datetime(9998, 12, 31),
                        timezones=zones, allow_imaginary=False)


TAG_LIKE = st.sampled_from(["__qj__", "v", "cls", "tz"])
HASHABLE_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=4),
    TAG_LIKE, st.dates(), st.uuids(), st.decimals(allow_nan=False), st.timedeltas(),
)
# str keys (a plain JSON object, or the tag itself) and any other hashable value or tuple
KEYS = st.one_of(TAG_LIKE, st.text(max_size=4), HASHABLE_LEAVES,
                 st.tuples(HASHABLE_LEAVES, HASHABLE_LEAVES))
LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20), TAG_LIKE,
    aware_or_naive_datetimes(), st.dates(), st.timedeltas(), st.decimals(allow_nan=False),
    st.uuids(),
)
VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(KEYS, children, max_size=3),
    ),
    max_leaves=8,
)


@settings(max_examples=10_000, deadline=None, database=None)
@given(VALUES)
def test_property_nested_allowed_values_round_trip(value):
    encoded = codec.dumps(value)
    decoded = codec.loads(encoded)
    assert same(decoded, value), (value, encoded, decoded)
    assert codec.dumps(decoded) == encoded


# -- refused types ------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "type_name"), [
    ({1, 2}, "set"),
    (frozenset({1}), "frozenset"),
    (b"bytes", "bytes"),
    (bytearray(b"x"), "bytearray"),
    (object(), "object"),
    (jobs.NotAllowed(), "NotAllowed"),
    (lambda session: None, "function"),
    (jobs.not_a_job, "function"),
    (complex(1, 2), "complex"),
    (range(3), "range"),
    (jobs.Box({1, 2}), "set"),             # a whitelisted class whose state is not storable
    ([1, {"deep": [{3}]}], "set"),          # nested
    ((1, b"x"), "bytes"),
    ({"k": object()}, "object"),
    ({frozenset(): 1}, "frozenset"),        # as a dict key
], ids=short_id)
def test_disallowed_types_raise_type_error_naming_the_type(value, type_name):
    with pytest.raises(TypeError) as caught:
        codec.dumps(value)
    assert type_name in str(caught.value)


def test_encode_arguments_refuses_a_disallowed_argument_or_keyword():
    with pytest.raises(TypeError, match="set"):
        codec.encode_arguments((1, {2}), {})
    with pytest.raises(TypeError, match="bytes"):
        codec.encode_arguments((), {"data": b"x"})


def test_a_lambda_or_local_function_cannot_be_whitelisted():
    def local_function():
        pass

    with pytest.raises(TypeError):
        whitelist_unpickle_global(lambda: None)
    with pytest.raises(TypeError):
        whitelist_unpickle_global(local_function)
    with pytest.raises(TypeError):
        whitelist_unpickle_global(42)


# -- arguments and their size limit ----------------------------------------------------------

def test_arguments_round_trip():
    args = (1, (2, 3), dt.date(2024, 1, 1), jobs.add)
    kwargs = {"when": dt.datetime(2024, 1, 1, tzinfo=PARIS), "items": [Decimal("2.50")]}
    args_text, kwargs_text = codec.encode_arguments(args, kwargs)
    decoded_args, decoded_kwargs = codec.decode_arguments(args_text, kwargs_text)
    assert type(decoded_args) is tuple
    assert same(decoded_args, args)
    assert same(decoded_kwargs, kwargs)


def test_a_str_with_a_lone_surrogate_is_storable():
    # what os.fsdecode() gives for a file name that is not UTF-8 (b"caf\xe9.txt")
    name = "caf\udce9.txt"
    args_text, kwargs_text = codec.encode_arguments((name,), {"path": name})
    args_text.encode("utf-8")  # the stored text is valid UTF-8
    assert codec.decode_arguments(args_text, kwargs_text) == ((name,), {"path": name})


def test_arguments_over_the_size_limit_are_refused():
    with pytest.raises(ArgumentsTooLargeError) as caught:
        codec.encode_arguments(("x" * codec.MAX_ARGS_SIZE,), {})
    assert isinstance(caught.value, ValueError)
    assert str(codec.MAX_ARGS_SIZE) in str(caught.value)


def test_size_limit_counts_the_stored_bytes_of_args_and_kwargs():
    # '["ab"]' + '{}' is 8 bytes
    codec.encode_arguments(("ab",), {}, max_size=8)
    with pytest.raises(ArgumentsTooLargeError):
        codec.encode_arguments(("ab",), {}, max_size=7)
    # non-ASCII text is stored escaped: '["\\u00e9"]' + '{}' is 12 bytes
    codec.encode_arguments(("é",), {}, max_size=12)
    with pytest.raises(ArgumentsTooLargeError):
        codec.encode_arguments(("é",), {}, max_size=11)
    with pytest.raises(ArgumentsTooLargeError):
        codec.encode_arguments((), {"k": "v" * 20}, max_size=20)


def test_arguments_just_under_the_default_limit_are_accepted():
    codec.encode_arguments(("x" * (codec.MAX_ARGS_SIZE - 100),), {})


@pytest.mark.parametrize("kwargs", [{1: "a"}, [("a", 1)], None])
def test_keyword_arguments_must_be_a_dict_of_names(kwargs):
    with pytest.raises(TypeError):
        codec.encode_arguments((), kwargs)


@pytest.mark.parametrize(("args_text", "kwargs_text"), [
    ('{"a": 1}', "{}"),
    ("1", "{}"),
    ("[]", "[]"),
    ("[]", '{"__qj__": "dict", "v": [[1, 2]]}'),
    (None, "{}"),
    ("[]", None),
])
def test_decode_arguments_refuses_the_wrong_shapes(args_text, kwargs_text):
    with pytest.raises(DecodeError):
        codec.decode_arguments(args_text, kwargs_text)


# -- decode failures ----------------------------------------------------------------------

SAMPLE = [
    "héllo", 1, 2.5, None, True, (1, "two"), {"k": [1, 2]}, {3: "x"},
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=PARIS), dt.date(2024, 1, 2),
    dt.timedelta(seconds=90), Decimal("1.25"), UUID(int=7), jobs.add, jobs.Point(1, 2),
    jobs.Box("b"), Color.RED, math.inf,
]


@pytest.mark.parametrize("payload", [
    "", " ", "{not json", "[1,", "[1, 2]]", "'single'", "{'a': 1}", "undefined",
    "NaN", "[Infinity]", "-Infinity", '{"a": 1,}', "\x00", "1" * 5000,
], ids=short_id)
def test_invalid_json_is_a_one_line_decode_error(payload):
    assert_one_line_decode_error(payload)


def test_every_bit_flip_either_decodes_or_is_a_one_line_decode_error():
    data = codec.dumps(SAMPLE).encode("utf-8")
    for position in range(len(data)):
        for bit in range(8):
            corrupt = bytearray(data)
            corrupt[position] ^= 1 << bit
            try:
                codec.loads(bytes(corrupt))
            except DecodeError as exc:
                assert len(str(exc).splitlines()) == 1, (position, bit, str(exc))


def test_every_truncation_is_a_one_line_decode_error():
    text = codec.dumps(SAMPLE)
    for end in range(len(text)):
        assert_one_line_decode_error(text[:end])
    data = text.encode("utf-8")
    for end in range(len(data)):
        assert_one_line_decode_error(data[:end])


@pytest.mark.parametrize("payload", [b'["\xff\xfe"]', b"\xc3", b'"\xed\xa0\x80"', b"\x80abc"],
                         ids=short_id)
def test_invalid_utf8_is_a_one_line_decode_error(payload):
    assert_one_line_decode_error(payload)


@pytest.mark.parametrize("payload", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 100_000 + "1" + "}" * 100_000,
    '{"__qj__":"tuple","v":[' * 10_000 + "]}" * 10_000,
], ids=["lists", "dicts", "tuples"])
def test_deep_nesting_is_a_one_line_decode_error(payload):
    assert_one_line_decode_error(payload)


@pytest.mark.parametrize("as_bytes", [False, True])
def test_a_payload_over_the_size_limit_is_refused_without_parsing(as_bytes):
    payload = '"' + "a" * 50_000_000 + '"'
    error = assert_one_line_decode_error(payload.encode() if as_bytes else payload)
    assert len(str(error)) < 300


def test_missing_or_non_text_payload_is_a_decode_error():
    assert_one_line_decode_error(None)
    assert_one_line_decode_error(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("payload", [
    {"__qj__": "nope", "v": 1},
    {"__qj__": "pickle", "v": "gASVAAAAAAAAAAA="},
    {"__qj__": "", "v": 1},
    {"__qj__": 7, "v": 1},
    {"__qj__": ["tuple"], "v": [1]},
    {"__qj__": "tuple\nsecond line", "v": [1]},
    {"__qj__": "x" * 10_000},
], ids=short_id)
def test_unknown_type_tags_are_one_line_decode_errors(payload):
    error = assert_one_line_decode_error(json.dumps(payload))
    assert "tag" in str(error)


@pytest.mark.parametrize("payload", [
    {"__qj__": "tuple", "v": 5},
    {"__qj__": "tuple"},
    {"__qj__": "dict", "v": [1]},
    {"__qj__": "dict", "v": [[[1], 2]]},
    {"__qj__": "dict", "v": [[{"a": 1}, 2]]},
    {"__qj__": "float", "v": "1.5"},
    {"__qj__": "float", "v": "x"},
    {"__qj__": "float", "v": "1\n\n"},
    {"__qj__": "datetime", "v": "yesterday"},
    {"__qj__": "datetime", "v": 5},
    {"__qj__": "datetime", "v": "2024-01-01T00:00:00+00:00", "tz": "Not/AZone"},
    {"__qj__": "datetime", "v": "2024-01-01T00:00:00+00:00", "tz": "/etc/passwd"},
    {"__qj__": "datetime", "v": "2024-01-01T00:00:00+00:00", "tz": "../../etc/passwd"},
    {"__qj__": "datetime", "v": "2024-01-01T00:00:00+00:00", "tz": "a\n/"},
    {"__qj__": "datetime", "v": "2024-01-01T00:00:00+00:00", "tz": 5},
    {"__qj__": "date", "v": "2024-13-01"},
    {"__qj__": "timedelta", "v": [1e10, 0, 0]},
    {"__qj__": "timedelta", "v": "1\n2"},
    {"__qj__": "decimal", "v": "one"},
    {"__qj__": "uuid", "v": "not-a-uuid"},
    {"__qj__": "job", "v": "tests.jobs.not_a_job"},
    {"__qj__": "job", "v": ["tests.jobs.add"]},
    {"__qj__": "global", "v": "os.system"},
    {"__qj__": "global", "v": None},
    {"__qj__": "object", "cls": "tests.jobs.NotAllowed", "v": {}},
    {"__qj__": "object", "cls": "tests.jobs.Box", "v": [1]},
    {"__qj__": "object", "cls": "tests.unit.test_codec.whitelisted_function", "v": {}},
    {"__qj__": "enum", "cls": "tests.unit.test_codec.Color", "v": "blue"},
], ids=short_id)
def test_bad_tagged_values_are_one_line_decode_errors(payload):
    assert_one_line_decode_error(json.dumps(payload))


def test_a_tag_naming_subprocess_popen_runs_nothing(tmp_path):
    marker = tmp_path / "created"
    for tag in ("object", "enum", "global", "job"):
        payload = {"__qj__": tag, "cls": "subprocess.Popen", "v": "subprocess.Popen"}
        if tag == "object":
            payload["v"] = {"args": ["touch", str(marker)]}
        elif tag == "enum":
            payload["v"] = ["touch", str(marker)]
        error = assert_one_line_decode_error(json.dumps(payload))
        assert "subprocess.Popen" in str(error)
    assert not marker.exists()


def test_decoding_never_calls_a_whitelisted_function():
    CALLS.clear()
    payload = {"__qj__": "enum", "cls": "tests.unit.test_codec.whitelisted_function",
               "v": "called by the payload"}
    with pytest.raises(DecodeError):
        codec.loads(json.dumps(payload))
    assert CALLS == []


PICKLE_NAMING_A_MODULE = "ccolorsys\nrgb_to_hsv\n(I1\nI2\nI3\ntR."


@pytest.mark.parametrize("payload", [
    pickle.dumps(jobs.Point(1, 2)),
    pickle.dumps({"a": (1, 2)}),
    pickle.dumps([1, 2, 3], protocol=0),
    pickle.dumps([1, 2, 3], protocol=0).decode("ascii"),
    pickle.dumps("text", protocol=0).decode("ascii"),
    PICKLE_NAMING_A_MODULE,
    PICKLE_NAMING_A_MODULE.encode("ascii"),
], ids=short_id)
def test_a_pickle_payload_is_a_decode_error(payload):
    assert_one_line_decode_error(payload)


@pytest.mark.parametrize("payload", [
    {"__qj__": "object", "cls": "colorsys.HSV", "v": {}},
    {"__qj__": "global", "v": "colorsys.rgb_to_hsv"},
    {"__qj__": "enum", "cls": "colorsys.Color", "v": 1},
    {"__qj__": "job", "v": "colorsys.rgb_to_hsv"},
    {"__qj__": "datetime", "v": "2024-01-01T00:00:00+00:00", "tz": "colorsys"},
    {"__qj__": "colorsys", "v": "colorsys"},
    PICKLE_NAMING_A_MODULE,
], ids=short_id)
def test_decoding_imports_nothing(payload, monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    text = payload if isinstance(payload, str) else json.dumps(payload)
    with pytest.raises(DecodeError):
        codec.loads(text)
    assert "colorsys" not in sys.modules
