"""The README's commands and training snippet work as written."""

import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from anchorprep.cli import app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def readme_command_args() -> list[str]:
    """The `anchorprep align ...` part of the README's first command."""
    first = next(line for line in README.splitlines() if "anchorprep align sample_data" in line)
    return shlex.split(first[first.index("anchorprep align") :])[1:]


def test_first_command_labels_the_sample_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_data").symlink_to(REPO / "sample_data")
    result = CliRunner().invoke(app, readme_command_args())
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "sample" / "anchors-00000-of-00001.parquet").is_file()


def test_training_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_data").symlink_to(REPO / "sample_data")
    assert CliRunner().invoke(app, [*readme_command_args(), "-q"]).exit_code == 0
    section = README[README.index("## Training with SAL") :]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(snippet, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    losses = [float(x) for x in re.findall(r"loss ([0-9.]+)", printed)]
    assert len(losses) == 2 and all(loss > 0 for loss in losses)


def test_python_api_snippet_runs_as_written(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_data").symlink_to(REPO / "sample_data")
    section = README[README.index("## The pipeline") : README.index("## Frame grid")]
    snippet = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(snippet, "README.md", "exec"), {})
    expected = re.search(r"# (\d+ \d+ \d+)\n", snippet).group(1)
    assert capsys.readouterr().out.strip() == expected


def test_trigger_examples_find_the_samples_positives(tmp_path, monkeypatch):
    """The accel/merge examples run on the shipped trigger sample and agree with it (3 positives)."""
    import json

    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample_data").symlink_to(REPO / "sample_data")
    lines = [line for line in README.splitlines() if line.startswith("anchorprep ") and "trigger" in line]
    commands = [part.strip() for line in lines for part in line.split("&&")]
    assert len(commands) == 4, commands
    for command in commands:
        args = [a.replace("OUT", "runs/accel-vad") for a in shlex.split(command.split("#")[0])[1:]]
        result = CliRunner().invoke(app, [*args, "-q"])
        assert result.exit_code == 0, (command, result.output)
    for run in ("runs/accel-vad", "runs/trigger"):
        report = json.loads((tmp_path / run / "report.json").read_text())
        assert report["positives"] == 3, (run, report)
