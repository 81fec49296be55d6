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
    # machine set-up lines (the browser for tests/report, CI=true) are not README commands
    setup = ("#", "set ", "cd ", "export ", ".ci/")
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(setup)]
    assert ci == commands


def test_exit_code_table_matches_the_code():
    readme = (ROOT / "README.md").read_text()
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", readme.split("### Exit codes", 1)[1], re.M)}
    assert documented == {int(c) for c in ExitCode}


def test_every_registered_method_is_in_the_readme_table():
    from xai_cli.methods.registry import method_cards

    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", readme.split("## Methods", 1)[1].split("\n## ", 1)[0], re.M))
    for card in method_cards():
        assert card.name in rows, f"{card.name} missing from the README's method table"
        for modality in card.modalities:
            assert modality in rows[card.name], f"{card.name}: {modality} not listed"


def test_quickstart_commands_run_offline_as_written(tmp_path, monkeypatch):
    import shlex

    from typer.testing import CliRunner

    from xai_cli.cli import app

    block = re.search(r"## Quickstart.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    monkeypatch.chdir(ROOT)
    for line in block.splitlines():
        args = shlex.split(line)[1:]  # drop "xai"
        args[args.index("--out") + 1] = str(tmp_path / args[args.index("--out") + 1])
        r = CliRunner().invoke(app, [*args, "--workers", "0", "-q"])
        assert r.exit_code == 0, (line, r.output)
    assert list(tmp_path.rglob("*.gradcam.png")) and list(tmp_path.rglob("*.lime.png"))


def test_python_api_example_runs_as_written(tmp_path, monkeypatch):
    block = re.search(r"## Python API.*?```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    monkeypatch.chdir(ROOT)
    code = block.replace('Path("xai-out")', repr(str(tmp_path / "xai-out")))
    code = code.replace('methods=("gradcam", "saliency"),', 'methods=("gradcam", "saliency"), workers=0,')
    exec(compile(code, "README.md", "exec"), {})
    assert len(list((tmp_path / "xai-out").glob("*.saliency.png"))) == 20


def test_layout_section_names_folders_that_exist():
    section = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^  (\w+)(/|\.py)", section, re.M)
    assert len(named) >= 12
    for name, kind in named:
        assert (ROOT / "xai_cli" / (name + (".py" if kind == ".py" else ""))).exists(), name
