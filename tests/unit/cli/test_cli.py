"""The CLI in-process: JSON contracts, one-line errors, help for every command."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from tests.helpers import in_process as run
from watcherd.cli import COMMANDS, main
from watcherd.cliargs import build_parser
from watcherd.core.config import Config


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


def test_a_library_without_a_catalog_yet_reads_as_empty(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / ".watcherd").mkdir()  # a library whose daemon has not written its catalog yet
    code, out, _ = run(capsys, "status", str(tmp_path), "--json")
    assert code == 0 and json.loads(out)["images"] == 0
    code, out, _ = run(capsys, "dupes", str(tmp_path), "--json")
    assert code == 0 and json.loads(out) == []
    assert list((tmp_path / ".watcherd").iterdir()) == []  # reading creates nothing


READS = [["status"], ["tags"], ["find", "--tag", "cats"], ["dupes"], ["errors"], ["missing"], ["similar", "0" * 16]]
CHANGES = [["untag", "a.png", "cats"], ["retag", "cats", "dogs"], ["forget", "a.png"], ["resolve", "x~1", "distinct"]]


@pytest.mark.parametrize("argv", READS + CHANGES, ids=lambda a: a[0])
def test_a_folder_that_is_no_library_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    command, rest = argv[0], argv[1:]
    code, out, err = run(capsys, command, str(plain), *rest)
    assert (code, out) == (2, "")
    assert err == (
        f"watcherd: error: {plain} is not a watcherd library (no .watcherd/ there); "
        f"make it one with 'watcherd scan {plain}' or 'watcherd run {plain}'\n"
    )
    # Found, not named: the current directory is never offered as a library.
    monkeypatch.chdir(plain)
    code, out, err = run(capsys, command, *rest)
    assert (code, out) == (2, "")
    assert err == f"watcherd: error: no watcherd library at {plain} or above it (no .watcherd/ found); " + (
        "give its ROOT, or run the command inside a library\n"
    )
    assert list(plain.iterdir()) == []  # nothing was made


def test_resolve_without_a_decision_is_a_usage_error_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library, elsewhere = tmp_path / "lib", tmp_path / "elsewhere"
    (library / ".watcherd").mkdir(parents=True)
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    wanted = "watcherd: error: resolve needs ID and a decision: distinct, keep-existing or keep-newcomer"
    for argv in ([str(library), "640x480_00ff00ff00ff00ff_~0123456789ab"], ["x~1"], [str(library)], []):
        assert run(capsys, "resolve", *argv) == (2, "", wanted + "\n")
    code, _, err = run(capsys, "resolve", str(library), "x~1", "keep")
    assert (code, err) == (2, wanted + "; 'keep' is none of them\n")
    assert list(elsewhere.iterdir()) == [] and list((library / ".watcherd").iterdir()) == []
    # A library whose catalog is not made yet: a change says so and names the library.
    code, _, err = run(capsys, "resolve", str(library), "x~1", "distinct")
    db = library / ".watcherd" / "catalog.sqlite"
    assert (code, err) == (
        2,
        f"watcherd: error: no catalog at {db} yet: nothing to change until 'watcherd scan {library}' has made it\n",
    )
    assert list((library / ".watcherd").iterdir()) == []


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
