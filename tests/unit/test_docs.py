"""The manual and ``--help`` agree: every subcommand has a row in the Commands page's table, and back;
the README (the front door) holds the two set-up commands exactly as CI runs the tests."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from watcherd.cliargs import build_parser
from watcherd.core.errors import WatcherdError

TOP = Path(__file__).resolve().parents[2]
README = TOP / "README.md"
MANUAL = TOP / "docs"


def _section(title: str) -> str:
    """A page of the manual (``docs/commands.md`` for "Commands"), whole."""
    return (MANUAL / f"{title.lower()}.md").read_text(encoding="utf-8")


def test_readme_holds_the_set_up_commands_ci_runs() -> None:
    text, ci = README.read_text(encoding="utf-8"), (TOP / ".ci" / "run").read_text(encoding="utf-8")
    tests = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest"
    assert tests in text and tests in ci
    assert ".venv/bin/pip install . && mkdir -p ~/Pictures/library && .venv/bin/watcherd run ~/Pictures/library" in text


def test_readme_lists_every_command_and_only_those() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    documented = set(re.findall(r"^\| `watcherd ([a-z][a-z-]*)", _section("Commands"), flags=re.MULTILINE))
    assert documented == set(sub.choices)


def test_readme_documents_every_exit_code() -> None:
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", _section("Commands"), flags=re.MULTILINE)}
    raised = {cls.exit_code for cls in _subclasses(WatcherdError)} - {1}
    assert raised <= codes and {0, 130, 70} <= codes


def _subclasses(cls: type[WatcherdError]) -> set[type[WatcherdError]]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_readme_documents_every_problem_code_check_reports() -> None:
    """Scripts match ``check``'s codes: each one has a row in the README's table, and back."""
    from watcherd.check.problems import Code

    text = _section("Commands")
    start = text.index("## Checking a library")
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", text[start:], flags=re.MULTILINE))
    assert documented == {c.value for c in Code}
    codes = {int(c) for c in re.findall(r"^\| (\d+) \|", text, flags=re.MULTILINE)}
    assert 1 in codes  # check's "problems found"
