"""The factory: detection order, custom parsers first, forced formats and format listing."""

from __future__ import annotations

import pytest

import parsers
from parsers import (
    FORMATS,
    LogParser,
    ParsedLog,
    ParserFactory,
    RegexParser,
    UnknownFormatError,
    detect_format,
    get_factory,
    list_formats,
    parse_line,
)

JSON = '{"msg": "hi", "level": "info"}'
APACHE = '127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 2326'
S5424 = "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - 'su root' failed"
S3164 = "<34>Oct 11 22:14:15 mymachine su: 'su root' failed"
S3164_NO_PRI = "Oct 11 22:14:15 mymachine su[7]: 'su root' failed"
LOGFMT = "level=info msg=hello user=alice"


@pytest.mark.parametrize(
    ("line", "fmt"),
    [
        (JSON, "json"),
        (APACHE, "apache"),
        (S5424, "syslog5424"),
        (S3164, "syslog3164"),
        (S3164_NO_PRI, "syslog3164"),
        (LOGFMT, "logfmt"),
        # Every first-character branch falls through to apache/logfmt when it misses.
        ("{a=1 b=2", "logfmt"),
        ("<b>=1 c=2", "logfmt"),
        ("March=1 april=2", "logfmt"),
        ('Mayhem.example.com - - [01/May/2024:12:00:00 +0000] "GET / HTTP/1.1" 200 1', "apache"),
        # A broken 5424 line is not handed to the 3164 parser.
        ("<34>1 broken", None),
        ("<13>", "syslog3164"),
        ("<html><body>", None),
        ("plain words", None),
        ("", None),
        ("   ", None),
    ],
)
def test_detection(line: str, fmt: str | None) -> None:
    assert detect_format(line) == fmt


@pytest.mark.parametrize("line", [S5424, S5424.replace("<34>1", "<0>12"), "<191>1 - - - - - -"])
def test_rfc5424_is_never_rfc3164(line: str) -> None:
    assert detect_format(line) == "syslog5424"
    assert parse_line(line, "syslog3164")[0] == "raw"


@pytest.mark.parametrize("line", [S3164, S3164_NO_PRI, "<13>Feb  5 17:32:18 10.0.0.99 BFG"])
def test_rfc3164_is_never_rfc5424(line: str) -> None:
    assert detect_format(line) == "syslog3164"
    assert parse_line(line, "syslog5424")[0] == "raw"


def test_unknown_line_is_raw_with_the_line_as_message() -> None:
    fmt, parsed = parse_line("  just words  ")
    assert fmt == "raw"
    assert parsed == ParsedLog(message="  just words  ", metadata={})


def test_forced_format_skips_detection() -> None:
    assert parse_line(LOGFMT, "logfmt")[0] == "logfmt"
    fmt, parsed = parse_line(JSON, "apache")
    assert (fmt, parsed.message) == ("raw", JSON)
    assert parse_line(JSON, "raw") == ("raw", ParsedLog(message=JSON, metadata={}))


def test_unknown_format_name_is_a_clear_error() -> None:
    with pytest.raises(UnknownFormatError, match=r"unknown format 'nope'.*json") as error:
        get_factory().parse(JSON, "nope")
    assert isinstance(error.value, ValueError)
    with pytest.raises(UnknownFormatError):
        get_factory().get("nope")


def test_parse_line_keeps_lines_of_an_unknown_format_raw() -> None:
    assert parse_line(JSON, "removed-custom-format") == ("raw", ParsedLog(JSON, metadata={}))


def test_one_factory_per_process() -> None:
    assert get_factory() is get_factory() is parsers.get_factory()


def test_formats_list_examples_that_parse_as_themselves() -> None:
    listed = list_formats()
    assert [f["name"] for f in listed] == [*FORMATS, "raw"]
    for entry in listed:
        assert set(entry) == {"name", "description", "example"}
        assert entry["description"] and entry["example"]
        assert parse_line(entry["example"])[0] == entry["name"]


class Upper(LogParser):
    """Claims any all-caps line; stands in for a custom format."""

    name = "upper"
    example = "HELLO"

    def parse(self, raw: str) -> ParsedLog | None:
        return ParsedLog(message=raw.lower()) if raw.isupper() else None


def test_custom_parsers_come_first_in_registration_order() -> None:
    factory = ParserFactory()
    factory.add_parser(RegexParser("braces", r"^\{(?P<message>.*)\}$"))
    factory.add_parser(RegexParser("braces2", r"^\{(?P<message>.*)$"))
    # Custom beats the built-in json on a JSON line, and the first registered wins.
    assert factory.parse(JSON)[0] == "braces"
    assert factory.names()[:2] == ["braces", "braces2"]
    assert factory.formats()[0]["name"] == "braces"
    # The module-level factory is untouched.
    assert get_factory().parse(JSON)[0] == "json"


def test_add_parser_refuses_clashes_and_replaces_on_request() -> None:
    factory = ParserFactory()
    factory.add_parser(Upper())
    with pytest.raises(ValueError, match="already registered"):
        factory.add_parser(Upper())
    with pytest.raises(ValueError, match="built-in"):
        factory.add_parser(RegexParser("apache", "x"))
    with pytest.raises(ValueError, match="built-in"):
        factory.add_parser(RegexParser("raw", "x"))
    with pytest.raises(ValueError, match="LogParser"):
        factory.add_parser("not a parser")  # type: ignore[arg-type]
    replacement = RegexParser("upper", r"^(?P<message>[A-Z]+)$")
    factory.add_parser(replacement, replace=True)
    assert factory.get("upper") is replacement
    assert factory.parse("HELLO") == ("upper", ParsedLog(message="HELLO", metadata={}))


def test_surrounding_whitespace_is_ignored_for_detection() -> None:
    assert detect_format(f"  {APACHE}\r\n") == "apache"
    assert parse_line(f"\t{S5424}\n")[1].message == "'su root' failed"


def test_parsers_never_set_format() -> None:
    for line in (JSON, APACHE, S5424, S3164, LOGFMT):
        assert "format" not in parse_line(line)[1].metadata
