"""Starlark's reports become one sentence and a position in the author's code."""

from __future__ import annotations

from consortia.sandbox._messages import MAX_MESSAGE_CHARS, parse_failure

REPORT = """Traceback (most recent call last):
  File <builtin>, in <module>
  * action.star:9, in consortia__entry
      consortia__run(main, params_json)
  * consortia.star:180, in run
      value = main(json.decode(params_json))
  * action.star:4, in main
      put("k", x)
  * consortia.star:150, in put
      _explain(value, "put value")
error: put value: nan is not a finite number
 --> consortia.star:120:17
    |
120 |                 _refuse(path)
    |
"""


def test_position_is_the_innermost_line_of_the_authors_code() -> None:
    failure = parse_failure(REPORT, user_lines=6)
    assert failure.text == "put value: nan is not a finite number"
    assert (failure.line, failure.column) == (4, None)
    assert failure.where("order") == "in action 'order' at line 4"


def test_arrow_in_the_authors_code_gives_line_and_column() -> None:
    report = "error: Parse error: unexpected\n --> action.star:2:10\n  |\n"
    failure = parse_failure(report, user_lines=3)
    assert (failure.text, failure.line, failure.column) == ("Parse error: unexpected", 2, 10)


def test_lines_past_the_authors_code_are_not_shown() -> None:
    report = "error: boom\n --> action.star:9:1\n"
    assert parse_failure(report, user_lines=5).line is None


def test_messages_are_clipped() -> None:
    failure = parse_failure("error: " + "x" * 10_000, user_lines=1)
    assert len(failure.text) == MAX_MESSAGE_CHARS
    assert parse_failure("plain", user_lines=1).text == "plain"


def test_position_found_past_line_nine() -> None:
    """starlark-rust widens the gutter for two-digit line numbers (``  --> file:11:9``)."""
    from consortia.sandbox._messages import parse_failure
    from consortia.sandbox._prelude import USER_FILE

    report = f"error: fail: no\n  --> {USER_FILE}:11:9\n   |\n11 | fail('no')\n"
    failure = parse_failure(report, user_lines=20)
    assert failure.text == "fail: no"
    assert (failure.line, failure.column) == (11, 9)
