"""The CLI in-process: JSON contracts, one-line errors, help for every command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from watcherd.cli import COMMANDS, main
from watcherd.cliargs import build_parser
from watcherd.config import Config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert isinstance(sub, argparse._SubParsersAction)
    assert set(sub.choices) == set(COMMANDS)
    for name, p in sub.choices.items():
        assert p.description, name
        with pytest.raises(SystemExit) as info:
            main([name, "--help"])
        assert info.value.code == 0
        assert "usage: watcherd " + name in capsys.readouterr().out


def test_empty_library_reads_as_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "status", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["images"] == 0
    code, out, _ = run(capsys, "dupes", str(tmp_path), "--json")
    assert code == 0 and json.loads(out) == []
    assert not (tmp_path / ".watcherd").exists()  # reading creates nothing


@pytest.mark.parametrize(
    ("argv", "code", "text"),
    [
        (["status", "/definitely/not/here"], 2, "does not exist"),
        (["frobnicate"], 2, "invalid choice"),
        (["find"], 2, "--tag"),
        (["status", "--bogus"], 2, "unrecognized arguments"),
        (["untag", "x"], 2, "untag takes [ROOT] NAME TAG"),
        (["tags", "a", "b", "c"], 2, "at most ROOT and NAME"),
        (["retag", "x"], 2, "retag takes [ROOT] OLD NEW"),
        (["untag", "--everywhere", "t", "a", "b"], 2, "takes only [ROOT]"),
        (["arrange", "sideways"], 2, "choose by-size or by-similarity"),
        (["forget"], 2, "required"),
        ([], 2, "required"),
    ],
)
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], code: int, text: str) -> None:
    got, out, err = run(capsys, *argv)
    assert got == code
    assert out == ""
    assert err.startswith("watcherd: error:") and text in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_bad_config_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    conf = tmp_path / "w.yaml"
    conf.write_text("thumbnail_sise: 3\n")
    code, _, err = run(capsys, "status", str(tmp_path), "-c", str(conf))
    expected = f"watcherd: error: config: thumbnail_sise: unknown key; allowed keys here are {_allowed()}\n"
    assert code == 2 and err == expected


def _allowed() -> str:
    import dataclasses

    return ", ".join(sorted(f.name for f in dataclasses.fields(Config)))
