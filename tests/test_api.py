"""The public Python API and the CLI over it: same folders, same options, errors in each user's terms."""

import dataclasses
import filecmp
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import anchorprep
from anchorprep.anchors import TargetWindow
from anchorprep.cli import app
from anchorprep.errors import UsageError
from anchorprep.grid import FrameGrid
from anchorprep.pipeline import api
from anchorprep.pipeline.options import PipelineOptions
from anchorprep.pipeline.runner import RunOptions

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_data"
runner = CliRunner()


def cli(*args) -> "typer.testing.Result":
    return runner.invoke(app, [str(a) for a in args])


def files_of(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_folder(a: Path, b: Path) -> None:
    left, right = files_of(a), files_of(b)
    assert sorted(left) == sorted(right)
    different = [name for name in left if not filecmp.cmp(left[name], right[name], shallow=False)]
    assert not different, f"files differ between {a} and {b}: {different}"


def test_python_call_and_cli_write_byte_identical_folders(tmp_path):
    py, sh = tmp_path / "python", tmp_path / "cli"
    manifest, trigger = SAMPLE / "manifest.csv", SAMPLE / "trigger_manifest.csv"
    calls = [
        ("align", lambda o: anchorprep.align(manifest, o, keyword=["hey computer", "okay computer"], edge="start",
                                             positive_window="-2:10", guard=2, frame_shift_ms=20, shard_size=10),
         ["align", manifest, "-k", "hey computer", "-k", "okay computer", "--edge", "start",
          "--positive-window", "-2:10", "--guard", "2", "--frame-shift-ms", "20", "--shard-size", "10"]),
        ("kw", lambda o: anchorprep.align(str(manifest), o, keyword="hey computer"),
         ["align", manifest, "-k", "hey computer"]),
        ("onset", lambda o: anchorprep.vad(manifest, o, anchors_from=py / "kw", onsets="first"),
         ["vad", manifest, "--anchors-from", sh / "kw", "--onsets", "first"]),
        ("vad", lambda o: anchorprep.vad(trigger, o, mode=2), ["vad", trigger, "--mode", "2"]),
        ("accel", lambda o: anchorprep.accel(trigger, o, preset="raise", band=(0.5, 2.5)),
         ["accel", trigger, "--preset", "raise", "--band", "0.5:2.5"]),
        ("trigger", lambda o: anchorprep.merge([py / "vad", py / "accel"], o, use_source=["vad", "accel"],
                                               agree_within_ms=400),
         ["merge", sh / "vad", sh / "accel", "--use-source", "vad", "--use-source", "accel",
          "--agree-within-ms", "400"]),
    ]
    for name, python_call, argv in calls:
        result = python_call(py / name)
        assert result.exit_code == 0 and result.complete, name
        shell = cli(*argv, "-o", sh / name, "-q")
        assert shell.exit_code == 0, (name, shell.output)
    # Paths an option names differ between the two trees only where the runs point at each other.
    for name in ("align", "kw", "vad", "accel"):
        assert_same_folder(py / name, sh / name)
    # --anchors-from / merge inputs name their own tree's runs; the shards' rows are the same.
    import pyarrow.parquet as pq

    for name in ("onset", "trigger"):
        shard = next((py / name).glob("data/anchors-*.parquet")).relative_to(py / name)
        assert pq.read_table(py / name / shard).equals(pq.read_table(sh / name / shard))


def test_cli_options_are_the_library_functions_arguments():
    """Every pipeline command's own options have the names and defaults of the function it calls."""
    from anchorprep.cli import pipelines

    for name in ("align", "vad", "accel", "merge"):
        declared = inspect.signature(getattr(pipelines, name)).parameters
        library = inspect.signature(getattr(api, name)).parameters
        assert list(declared) == [p for p in library if p not in ("progress", "options")], name
        for param, value in declared.items():
            if value.default is not inspect.Parameter.empty:
                assert value.default == library[param].default, (name, param)


def test_shared_option_defaults_are_the_librarys():
    """PipelineOptions (what the CLI shows) agrees with the classes that use the options."""
    defaults = PipelineOptions()
    grid = FrameGrid()
    for name in ("sample_rate", "frame_shift_ms", "frame_length_ms", "snip_edges", "subsampling"):
        assert getattr(defaults, name) == getattr(grid, name)
    assert TargetWindow.parse(defaults.positive_window, defaults.guard) == TargetWindow()
    run_defaults = {f.name: f.default for f in dataclasses.fields(RunOptions)}
    for name in ("shard_size", "workers", "shard_index", "num_shards", "resume", "overwrite", "max_errors",
                 "dry_run", "retries", "executor", "address"):
        assert getattr(defaults, name) == run_defaults[name], name
    assert inspect.signature(api.vad).parameters["mode"].default == __import__(
        "anchorprep.sources.vad", fromlist=["VadSettings"]).VadSettings().mode


def test_bad_arguments_are_usage_errors_named_for_each_user(tmp_path):
    with pytest.raises(UsageError, match="`positive_window` must look like LO:HI") as caught:
        anchorprep.align(SAMPLE / "manifest.csv", tmp_path / "a", keyword="hey computer", positive_window="30")
    assert isinstance(caught.value, ValueError)
    shell = cli("align", SAMPLE / "manifest.csv", "-o", tmp_path / "b", "-k", "hey computer", "--positive-window", "30")
    assert shell.exit_code == 2
    assert "--positive-window must look like LO:HI" in shell.output and "`" not in shell.output
    with pytest.raises(UsageError, match="unknown option.*sample_rat"):
        anchorprep.align(SAMPLE / "manifest.csv", tmp_path / "c", keyword="x", sample_rat=8000)
    with pytest.raises(UsageError, match="`workers` must be int"):
        anchorprep.vad(SAMPLE / "manifest.csv", tmp_path / "d", workers="2")
    with pytest.raises(UsageError, match="`keyword` must be a string or a list of strings"):
        anchorprep.align(SAMPLE / "manifest.csv", tmp_path / "e", keyword=[1, 2])
    with pytest.raises(UsageError, match="shared options are (?!.*sample_rate)"):
        anchorprep.merge([tmp_path, tmp_path], tmp_path / "f", sample_rate=8000)
    assert not any((tmp_path / n).exists() for n in "abcdef")


def test_help_version_and_completion():
    for flag in ("-h", "--help"):
        shown = cli(flag)
        assert shown.exit_code == 0 and "align" in shown.output and "--install-completion" in shown.output
    assert cli("align", "-h").exit_code == 0
    version = cli("--version")
    assert version.exit_code == 0 and version.output.strip() == f"anchorprep {anchorprep.__version__}"
    # rich markup must not eat "[dask]" in help text.
    assert "anchorprep[dask]" in cli("align", "--help").output.replace("\n", "").replace("│", "").replace(" ", "")


def test_plot_writes_to_out_like_every_command():
    from anchorprep.cli.app import app as typer_app

    command = typer.main.get_command(typer_app).commands["plot"]
    assert any("--out" in p.opts for p in command.params)
    assert not any("--output" in p.opts for p in command.params)


def test_help_imports_no_numerics():
    """`anchorprep --help` loads typer and rich, not numpy/pandas/pyarrow/torch (start-up time)."""
    code = ("import sys, anchorprep.cli.app; "
            "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'torch', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "[]"


def test_import_anchorprep_is_light_and_lazy():
    code = ("import sys, anchorprep; assert 'pandas' not in sys.modules; "
            "f = anchorprep.align; print(f.__module__, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.split() == ["anchorprep.pipeline.api", "False"]  # the pipelines never need pandas
    with pytest.raises(AttributeError):
        anchorprep.no_such_function  # noqa: B018


def test_every_package_folder_is_a_package():
    """setuptools' find_packages skips folders without __init__.py: a wheel would lack them."""
    for folder in (REPO / "anchorprep").rglob("*"):
        if folder.is_dir() and folder.name != "__pycache__" and any(folder.glob("*.py")):
            assert (folder / "__init__.py").is_file(), folder


def test_every_install_hint_in_help_keeps_its_brackets():
    """rich markup eats "[dask]" unless escaped: every `anchorprep[extra]` in help text survives."""
    import re

    command_group = typer.main.get_command(app)
    names = [(name,) for name in command_group.commands if name != "export"] + [("export", "lhotse"), ("export", "wekws")]
    for path in names:
        shown = cli(*path, "--help").output
        flat = re.sub(r"[\s│]+", "", shown)
        command = command_group
        for part in path:
            command = command.commands[part]
        for param in command.params:
            for extra in re.findall(r"anchorprep\\?\[(\w+)\]", param.help or ""):
                assert f"anchorprep[{extra}]" in flat, (path, extra)


def test_batch_logs_get_progress_lines(tmp_path):
    """Not a terminal (a scheduler's log): plain progress lines at the interval, start and end."""
    result = cli("align", SAMPLE / "manifest.csv", "-o", tmp_path / "o", "-k", "hey computer", "--shard-size", "5",
                 "--progress-interval", "0")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "anchorprep align:" in line]
    assert "24 items to process" in lines[0]
    assert any("/24 items" in line and "items/s" in line for line in lines[1:-1])
    assert lines[-1].endswith("done") and "24/24 items (100.0%)" in lines[-1]
    quiet = cli("align", SAMPLE / "manifest.csv", "-o", tmp_path / "q", "-k", "hey computer", "-q")
    assert "items to process" not in quiet.output


def test_ctrl_c_says_how_to_continue(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "align", interrupted)
    result = cli("align", SAMPLE / "manifest.csv", "-o", tmp_path / "o", "-k", "hey computer")
    assert result.exit_code == 130
    assert "--resume" in result.output and "Traceback" not in result.output


def test_inspect_commands_name_options_too(tmp_path):
    """Commands outside the pipelines render backquoted parameters as their options as well."""
    run = tmp_path / "run"
    assert anchorprep.align(SAMPLE / "manifest.csv", run, keyword="hey computer").exit_code == 0
    result = cli("validate", run, "--deep", "2")
    assert result.exit_code == 2 and "--deep" in result.output and "--inputs" in result.output
    assert "`deep`" not in result.output and "`inputs`" not in result.output


@pytest.mark.parametrize("command", ["align-folder", "align-manifest", "vad-folder"])
def test_pipelines_on_folders_and_manifests_never_import_pandas(tmp_path, command):
    """`anchorprep align`/`vad` end to end (items, run, shard writing, assembly) without pandas:
    importing it is ~0.3 s of a one-file run's start-up (pyarrow.array imports it on first use,
    so the item tables and shard writer build arrays from buffers, `anchorprep.sources.arrow`)."""
    from anchorprep.synthetic import write_synthetic_alignments

    manifest = write_synthetic_alignments(tmp_path / "corpus", n=3, seed=1)
    if command == "vad-folder":
        import numpy as np
        import soundfile as sf

        (tmp_path / "wavs").mkdir()
        sf.write(tmp_path / "wavs" / "a.wav", np.zeros(16000, np.int16), 16000)
        args = ["vad", str(tmp_path / "wavs")]
    else:
        inputs = manifest if command == "align-manifest" else manifest.parent / "grids"
        args = ["align", str(inputs), "-k", "hey computer"]
    code = ("import sys\nfrom anchorprep.cli import main\nsys.argv = ['anchorprep', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit as exit:\n    assert not exit.code, exit.code\n"
            "print('pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, *args, "-o", str(tmp_path / "out"), "-q"], capture_output=True,
                         text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "False"
    assert (tmp_path / "out" / "manifest.json").is_file()
