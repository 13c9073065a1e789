"""The README's promises: it opens with the two commands, CI runs the test command it names, and
code it quotes is the code in the repository, not a retyped copy."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
QUOTE = re.compile(r"<!-- quote: (?P<path>\S+) -->\n```\w*\n(?P<body>.*?)```", re.DOTALL)


def test_readme_opens_with_the_main_job_and_the_test_command() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make run", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    ci_commands = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci_commands


def test_quoted_code_matches_the_files() -> None:
    quotes = list(QUOTE.finditer(README))
    assert quotes, "the README quotes no file"
    for quote in quotes:
        assert quote["body"] == (REPO_ROOT / quote["path"]).read_text(), quote["path"]
