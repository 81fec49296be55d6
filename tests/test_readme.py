"""The README's two set-up commands are exactly what .ci/run runs; the documented exit codes match the code."""

from __future__ import annotations

import re
from pathlib import Path

from xai_cli.errors import ExitCode

ROOT = Path(__file__).parents[1]


def setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_commands():
    commands = setup_commands()
    assert len(commands) == 2
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == commands


def test_exit_code_table_matches_the_code():
    readme = (ROOT / "README.md").read_text()
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", readme.split("### Exit codes", 1)[1], re.M)}
    assert documented == {int(c) for c in ExitCode}
