"""The request/answer files: pure encoding, then the exchange on a real folder (served in-line)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from watcherd.commands import mailbox
from watcherd.commands.mailbox import Answer, Request
from watcherd.core.errors import UsageError


def test_request_round_trip_keeps_odd_names() -> None:
    req = Request("untag", {"name": "640x480_0123456789abcdef_.png", "tag": "caf\udce9"}, created=1_700_000_000.5)
    back = mailbox.decode_request(mailbox.encode_request(req))
    assert back == req
    raw = json.loads(mailbox.encode_request(req))
    assert set(raw) == {"version", "id", "command", "arguments", "created", "created_ns", "host", "pid"}
    assert raw["created"] == "2023-11-14T22:13:20+00:00"


def test_answer_round_trip() -> None:
    ok = Answer("abc", True, result={"forgotten": ["x"]})
    assert mailbox.decode_answer(mailbox.encode_answer(ok)) == ok
    bad = Answer("abc", False, error="no image has the tag 'x'", exit_code=2)
    assert mailbox.decode_answer(mailbox.encode_answer(bad)) == bad


@pytest.mark.parametrize("data", [b"", b"{", b"[]", b'{"version": 99}', b'{"version": 1, "command": 3}'])
def test_malformed_requests_are_usage_errors(data: bytes) -> None:
    with pytest.raises(UsageError, match="malformed request"):
        mailbox.decode_request(data)


def test_names_sort_oldest_first() -> None:
    early, late = Request("x", {}, created=9.0), Request("x", {}, created=10.0)
    assert early.stem < late.stem


def test_serve_applies_oldest_first_answers_and_cleans_up(tmp_path: Path) -> None:
    folder = tmp_path / "requests"
    first = Request("one", {}, created=100.0)
    second = Request("two", {}, created=200.0)
    mailbox.submit(folder, second)
    mailbox.submit(folder, first)
    seen: list[str] = []

    def handle(req: Request) -> Answer:
        seen.append(req.command)
        assert mailbox.taken(folder, req)  # a command can tell it is being applied
        return Answer(req.id, True, result={"done": req.command})

    assert mailbox.serve(folder, handle) == 2
    assert seen == ["one", "two"]
    assert mailbox.collect(folder, first) == Answer(first.id, True, result={"done": "one"})
    assert mailbox.collect(folder, second) is not None
    assert list(folder.iterdir()) == []  # requests removed when answered, answers once collected


def test_withdrawn_request_is_never_applied(tmp_path: Path) -> None:
    folder = tmp_path / "requests"
    req = Request("one", {})
    mailbox.submit(folder, req)
    assert mailbox.withdraw(folder, req)
    assert mailbox.serve(folder, lambda r: Answer(r.id, True)) == 0
    assert not mailbox.withdraw(folder, req)


def test_a_request_taken_by_a_writer_that_died_is_applied_again(tmp_path: Path) -> None:
    folder = tmp_path / "requests"
    req = Request("one", {})
    path = mailbox.submit(folder, req)
    path.rename(path.with_name(req.stem + mailbox.TAKEN))  # taken, then the writer was killed
    assert mailbox.serve(folder, lambda r: Answer(r.id, True, result=1)) == 1
    assert mailbox.collect(folder, req) == Answer(req.id, True, result=1)


def test_a_malformed_request_gets_an_error_answer(tmp_path: Path) -> None:
    folder = tmp_path / "requests"
    folder.mkdir()
    (folder / "00000000000000000001-deadbeef.request.json").write_text("not json")
    assert mailbox.serve(folder, lambda r: Answer(r.id, True)) == 1
    (answer,) = folder.iterdir()
    got = mailbox.decode_answer(answer.read_bytes())
    assert not got.ok and got.exit_code == 2 and "malformed" in (got.error or "")


def test_temporaries_and_stale_answers(tmp_path: Path) -> None:
    folder = tmp_path / "requests"
    folder.mkdir()
    (folder / ".watcherd-tmp-half").write_text("{")
    old = folder / "00000000000000000001-aa.answer.json"
    old.write_text("{}")
    assert mailbox.pending(folder, now=old.stat().st_mtime + mailbox.STALE_ANSWER + 1) == []
    assert not old.exists() and (folder / ".watcherd-tmp-half").exists()
    assert mailbox.pending(tmp_path / "absent") == []
