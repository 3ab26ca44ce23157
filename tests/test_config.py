"""`--config anchorprep.toml` and `--print-config` on every pipeline command."""

import json

from typer.testing import CliRunner

from anchorprep.cli import app
from anchorprep.synthetic import write_synthetic_alignments

runner = CliRunner()


def test_config_file_sets_defaults_and_flags_override(tmp_path):
    manifest = write_synthetic_alignments(tmp_path / "corpus", n=6)
    config = tmp_path / "anchorprep.toml"
    config.write_text('shard-size = 4\n[grid]\nframe-shift-ms = 20\n[align]\nkeyword = ["hey computer"]\nguard = 2\n')
    result = runner.invoke(app, ["align", str(manifest), "-o", str(tmp_path / "a"), "--config", str(config), "-q"])
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "a" / "manifest.json").read_text())["settings"]
    assert settings["grid"]["frame_shift_ms"] == 20 and settings["targets"]["guard"] == 2
    assert settings["shard_size"] == 4 and settings["config"]["keyword"] == ["hey computer"]
    flag = runner.invoke(app, ["align", str(manifest), "-o", str(tmp_path / "b"), "--config", str(config), "--guard", "5", "-q"])
    assert flag.exit_code == 0
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["settings"]["targets"]["guard"] == 5


def test_print_config_round_trips(tmp_path):
    manifest = write_synthetic_alignments(tmp_path / "corpus", n=6)
    printed = runner.invoke(app, ["align", str(manifest), "-o", str(tmp_path / "x"), "-k", "hey computer",
                                  "--positive-window", "-2:12", "--print-config"])
    assert printed.exit_code == 0 and "[align]" in printed.stdout and 'positive-window = "-2:12"' in printed.stdout
    assert not (tmp_path / "x").exists()
    (tmp_path / "printed.toml").write_text(printed.stdout)
    by_flags = runner.invoke(app, ["align", str(manifest), "-o", str(tmp_path / "f"), "-k", "hey computer",
                                   "--positive-window", "-2:12", "-q"])
    by_file = runner.invoke(app, ["align", str(manifest), "-o", str(tmp_path / "c"), "--config", str(tmp_path / "printed.toml"), "-q"])
    assert by_flags.exit_code == by_file.exit_code == 0
    assert (tmp_path / "f" / "manifest.json").read_text() == (tmp_path / "c" / "manifest.json").read_text()


def test_unknown_or_broken_config_is_a_usage_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[vad]\nmode = 2\nbogus = 1\n")
    result = runner.invoke(app, ["vad", str(tmp_path), "-o", str(tmp_path / "o"), "--config", str(bad)])
    assert result.exit_code == 2 and "bogus" in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("mode = = 2\n")
    assert runner.invoke(app, ["vad", str(tmp_path), "-o", str(tmp_path / "o"), "--config", str(broken)]).exit_code == 2


def test_example_configs_load(tmp_path):
    from pathlib import Path

    examples = Path(__file__).resolve().parents[1] / "examples" / "configs"
    for command in ("align", "vad", "accel"):
        result = runner.invoke(app, [command, str(tmp_path), "-o", str(tmp_path / "o"),
                                     "--config", str(examples / f"{command}.toml"), "--print-config"])
        assert result.exit_code == 0, (command, result.output)
        assert f"[{command}]" in result.stdout
