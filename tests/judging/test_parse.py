import pytest

from equiv.judging.parse import parse_reply


@pytest.mark.parametrize(
    "reply, winner",
    [
        ('{"winner": "A", "reason": "more complete"}', "A"),
        ('{"winner": "B", "reason": ""}', "B"),
        ('{"winner": "tie", "reason": "same"}', "tie"),
        ('```json\n{"winner": "b", "reason": "x"}\n```', "B"),
        ("After comparing both, my verdict is [[A]].", "A"),
        ("[[B]]", "B"),
        ("Equal quality: [[C]]", "tie"),
        ('Sure! {"winner": "A", "reason": "A is right"} Hope that helps.', "A"),
    ],
)
def test_accepted_forms(reply: str, winner: str) -> None:
    assert parse_reply(reply)[0] == winner


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "I think both answers are fine.",
        '{"winner": "C+"}',
        '{"winner": "A"',  # truncated JSON
        '{"verdict": "A"}',
        '{"winner": "A"} actually no {"winner": "B"}',  # conflicting: never guessed
        "[[A]] or maybe [[B]]",
        "A",
    ],
)
def test_unparseable_is_none_never_a_guess(reply: str) -> None:
    assert parse_reply(reply)[0] is None


def test_reason_is_kept() -> None:
    assert parse_reply('{"winner": "A", "reason": "cites the refund policy"}')[1] == "cites the refund policy"
