"""Every code block of README.md runs, in order, in one workspace, and shows what it prints.

The workspace is one temporary folder per test session (the current directory while a block
runs) with `sample_data` linked in and the inputs the README names that the sample lacks, made
from it by `make_workspace`: `kaldi/{words.ctm,segments,wav.scp}` (the sample TextGrids' words as
a recording-relative CTM), `manifest.jsonl` and the `broken` run that `validate` inspects.

- ```python blocks are executed in a fresh namespace that already holds `import anchorprep`
  (so the README's later examples need not repeat it). A `print(...)` whose line ends in a
  comment prints that comment: every line it prints must equal the comment's text (`…` as below).
- ```console blocks: a line starting with `$ ` is a command, run as `python -m anchorprep ...`
  in a subprocess with this repository first on PYTHONPATH; the lines up to the next `$ ` are
  its expected output (standard output and error, as a terminal shows them), compared line by
  line; `…` stands for any text (hashes, timings). A block without `$ ` lines is a bare command
  that must exit 0. Exit codes of `$ ` commands are not checked: `validate broken` exits 1.
- ```bash blocks are install and cluster recipes; their `anchorprep` commands are run (exit 0)
  when everything else in the block is an install step (venv, pip, pytest), so the first
  command's `out/sample` exists for the blocks after it. Blocks with other commands (the
  benchmarks) are not run.
- The output listing (a plain block of `OUT/...` lines) names files that `out/sample` has.

Expected values live in README.md only; a changed output fails with a diff.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import io
import json
import os
import re
import shlex
import subprocess
import sys
import tokenize
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import anchorprep

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
WILDCARD = "…"
INSTALL_STEPS = ("python3 -m venv", ". .venv/bin/activate", "pip install", "python -m pytest")


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README: its language, first code line and text."""

    lang: str
    line: int
    text: str

    @property
    def name(self) -> str:
        return f"README.md:{self.line}:{self.lang or 'listing'}"


def readme_blocks(text: str) -> list[Block]:
    blocks = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```", text, re.S | re.M):
        line = text.count("\n", 0, match.start()) + 2
        blocks.append(Block(match.group(1), line, match.group(2)))
    return blocks


def is_layout(block: Block) -> bool:
    return block.lang == "" and all(line.startswith("OUT/") for line in block.text.splitlines() if line.strip())


# --- expected output -------------------------------------------------------------------------


def line_pattern(expected: str) -> re.Pattern:
    return re.compile(".*?".join(re.escape(part) for part in expected.split(WILDCARD)))


def check_output(what: str, expected: list[str], actual: list[str]) -> None:
    """Each actual line fully matches its expected line (with `…` wildcards); else a diff."""
    if len(expected) == len(actual) and all(line_pattern(e).fullmatch(a) for e, a in zip(expected, actual)):
        return
    diff = "\n".join(difflib.unified_diff(expected, actual, "README shows", "printed", lineterm=""))
    raise AssertionError(f"{what}: the output differs from the README (… is a wildcard)\n{diff}")


# --- python blocks ---------------------------------------------------------------------------


def trailing_comments(source: str) -> dict[int, str]:
    """Line number -> the text of the comment that ends that line."""
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string[1:].strip()
    return comments


class CapturePrints(ast.NodeTransformer):
    """Sends each `print(...)` whose last line ends in a comment to its own buffer."""

    def __init__(self, comments: dict[int, str]):
        self.comments = comments
        self.expected: dict[int, str] = {}

    def visit_Expr(self, node: ast.Expr) -> ast.Expr:
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "print":
            comment = self.comments.get(call.end_lineno)
            if comment is not None:
                self.expected[call.end_lineno] = comment
                buffer = ast.Call(ast.Name("__readme_buffer__", ast.Load()), [ast.Constant(call.end_lineno)], [])
                call.keywords.append(ast.keyword("file", buffer))
        return node


PRINTED: dict[int, list[str]] = {}  # README line of a commented print -> the lines it printed


def run_python(block: Block) -> None:
    tree = ast.parse(block.text)
    capture = CapturePrints(trailing_comments(block.text))
    tree = ast.fix_missing_locations(capture.visit(tree))
    buffers: dict[int, io.StringIO] = {}
    namespace = {"__name__": "__readme__", "anchorprep": anchorprep,
                 "__readme_buffer__": lambda line: buffers.setdefault(line, io.StringIO())}
    exec(compile(ast.increment_lineno(tree, block.line - 1), str(README), "exec"), namespace)
    for line, comment in capture.expected.items():
        printed = buffers[line].getvalue().splitlines() if line in buffers else []
        PRINTED[block.line + line - 1] = printed
        if not printed:
            raise AssertionError(f"README.md:{block.line + line - 1}: the print never ran")
        check_output(f"README.md:{block.line + line - 1}", [comment] * len(printed), printed)


# --- console and bash blocks -----------------------------------------------------------------


def anchorprep_command(words: list[str]) -> list[str]:
    assert words[0] == "anchorprep", words
    return [sys.executable, "-m", "anchorprep", *words[1:]]


def run_command(segment: str, where: str) -> subprocess.CompletedProcess:
    """Runs `anchorprep ...` or `cat FILE | anchorprep ...` from the README (comments dropped);
    stdout holds what a terminal shows (standard output and error, in the order written)."""
    stdin = None
    if "|" in segment:
        source, segment = (part.strip() for part in segment.split("|", 1))
        cat, path = shlex.split(source)
        assert cat == "cat", f"{where}: only `cat FILE | anchorprep ...` pipes are run"
        stdin = Path(path).read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "200", "NO_COLOR": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(anchorprep_command(shlex.split(segment, comments=True)), input=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout.decode())


def must_succeed(result: subprocess.CompletedProcess, where: str) -> None:
    if result.returncode != 0:
        raise AssertionError(f"{where}: `{' '.join(result.args[2:])}` exited {result.returncode}\n"
                             f"{result.stdout}")


def run_console(block: Block) -> None:
    lines = block.text.splitlines()
    if not any(line.startswith("$ ") for line in lines):
        for offset, line in enumerate(lines):
            if line.strip():
                must_succeed(run_command(line, f"README.md:{block.line + offset}"), f"README.md:{block.line + offset}")
        return
    commands: list[tuple[int, str, list[str]]] = []
    for offset, line in enumerate(lines):
        if line.startswith("$ "):
            commands.append((block.line + offset, line[2:], []))
        else:
            assert commands, f"{block.name}: output before the first `$ ` line"
            commands[-1][2].append(line)
    for line, command, expected in commands:
        result = run_command(command, f"README.md:{line}")
        check_output(f"README.md:{line} `{command}` (exit {result.returncode})",
                     expected, result.stdout.splitlines())


def bash_segments(block: Block) -> tuple[list[tuple[int, str]], str | None]:
    """The block's anchorprep commands, or why the block is not run."""
    commands = []
    for offset, line in enumerate(block.text.splitlines()):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        for segment in (part.strip() for part in line.split("&&")):
            if segment.startswith(INSTALL_STEPS):
                continue
            if not re.match(r"(cat \S+ \| )?anchorprep ", segment):
                return [], f"not only install steps and anchorprep commands: {segment!r}"
            commands.append((block.line + offset, segment))
    return commands, None


def run_bash(block: Block) -> None:
    commands, _ = bash_segments(block)
    for line, command in commands:
        must_succeed(run_command(command, f"README.md:{line}"), f"README.md:{line}")


def check_layout(block: Block) -> None:
    """Every `OUT/name` the output listing names is in `out/sample` (shard numbers as digits)."""
    for offset, line in enumerate(block.text.splitlines()):
        if not line.strip():
            continue
        name = line.split()[0].removeprefix("OUT/")
        pattern = re.sub(r"\d{5}", "[0-9]" * 5, name.rstrip("/"))
        found = list(Path("out/sample").glob(pattern))
        if not found or (name.endswith("/") and not found[0].is_dir()):
            present = sorted(p.name for p in Path("out/sample").iterdir())
            raise AssertionError(f"README.md:{block.line + offset}: out/sample has no {name} (it has {present})")


RUNNERS = {"python": run_python, "console": run_console, "bash": run_bash, "": check_layout}


def is_run(block: Block) -> bool:
    if block.lang == "bash":
        return bash_segments(block)[1] is None
    return block.lang in ("python", "console") or is_layout(block)


BLOCKS = [b for b in readme_blocks(README.read_text(encoding="utf-8")) if is_run(b)]


# --- the workspace ---------------------------------------------------------------------------


def write_kaldi_inputs(folder: Path) -> None:
    """The sample's words as Kaldi writes them: one recording per utterance, a segment over all
    of it, recording-relative CTM times (from the sample TextGrids, read with praatio)."""
    import soundfile
    from praatio import textgrid

    folder.mkdir()
    ctm, segments, wav_scp = [], [], []
    for grid_path in sorted(Path("sample_data/alignments").glob("*.TextGrid")):
        utt = grid_path.stem
        words = textgrid.openTextgrid(str(grid_path), includeEmptyIntervals=False).getTier("words")
        ctm += [f"{utt} 1 {w.start:.3f} {w.end - w.start:.3f} {w.label}" for w in words.entries]
        audio = Path("sample_data/audio", f"{utt}.flac")
        segments.append(f"{utt} {utt} 0.000 {soundfile.info(str(audio)).duration:.3f}")
        wav_scp.append(f"{utt} {audio.resolve()}")
    for name, lines in (("words.ctm", ctm), ("segments", segments), ("wav.scp", wav_scp)):
        (folder / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_jsonl_manifest(path: Path) -> None:
    """sample_data/manifest.csv as JSON lines, paths relative to the workspace."""
    import csv

    with open("sample_data/manifest.csv", newline="", encoding="utf-8") as f, path.open("w") as out:
        for row in csv.DictReader(f):
            for key in ("audio_path", "alignment_path"):
                row[key] = f"sample_data/{row[key]}"
            out.write(json.dumps(row) + "\n")


def write_broken_run(path: Path) -> None:
    """A run of the sample with one distance edited (the anchor frame of its second row) and a
    line that is not JSON appended to its errors file, for the README's `validate broken`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from anchorprep.shards.run import RunFolder

    result = anchorprep.align("sample_data/manifest.csv", str(path), keyword="hey computer")
    assert result.exit_code == 0, result
    folder = RunFolder(path)
    shard = folder.shard_files()[0]
    table = pq.read_table(shard)
    distances = table.column("distance").to_pylist()
    distances[1][distances[1].index(0)] = 1
    column = table.schema.get_field_index("distance")
    table = table.set_column(column, table.schema.field(column), pa.array(distances, table.schema.field(column).type))
    pq.write_table(table, shard, compression="zstd")
    with folder.errors_file.open("a", encoding="utf-8") as f:
        f.write('{"utt_id": "x" "row": 3}\n')


def make_workspace(root: Path) -> None:
    (root / "sample_data").symlink_to(REPO / "sample_data")
    write_kaldi_inputs(root / "kaldi")
    write_jsonl_manifest(root / "manifest.jsonl")
    write_broken_run(root / "broken")


@dataclass
class ReadmeSession:
    """Runs the README's blocks in order, once, and remembers how each one went."""

    root: Path
    outcomes: list[Exception | None] = field(default_factory=list)

    def run_through(self, index: int) -> Exception | None:
        while len(self.outcomes) <= index:
            block = BLOCKS[len(self.outcomes)]
            try:
                RUNNERS[block.lang](block)
                self.outcomes.append(None)
            except Exception as error:  # reported by the block's own test
                self.outcomes.append(error)
        return self.outcomes[index]


@pytest.fixture(scope="session")
def readme_session(tmp_path_factory) -> ReadmeSession:
    root = tmp_path_factory.mktemp("readme")
    with contextlib.chdir(root):
        make_workspace(root)
    return ReadmeSession(root)


@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[b.name for b in BLOCKS])
def test_readme_block(index, readme_session, monkeypatch):
    monkeypatch.chdir(readme_session.root)
    outcome = readme_session.run_through(index)
    if outcome is not None:
        pytest.fail(f"{BLOCKS[index].name}\n" + "".join(traceback.format_exception(outcome)), pytrace=False)


def test_training_snippet_prints_two_positive_losses(readme_session, monkeypatch):
    """The training example's print runs once per epoch with a positive loss (its README
    comment checks the format only: the digits depend on the machine's float arithmetic)."""
    monkeypatch.chdir(readme_session.root)
    index = next(i for i, b in enumerate(BLOCKS) if "streaming_anchor_loss(" in b.text)
    assert readme_session.run_through(index) is None
    printed = next(lines for line, lines in PRINTED.items() if BLOCKS[index].line <= line < BLOCKS[index + 1].line)
    losses = [float(re.fullmatch(r"epoch \d+: loss ([0-9.]+)", line).group(1)) for line in printed]
    assert len(losses) == 2 and all(loss > 0 for loss in losses), printed


def test_the_readme_has_the_blocks_the_tests_rely_on():
    """The first command writes out/sample, and python and console blocks are found."""
    commands, _ = bash_segments(BLOCKS[0])
    assert any("-o out/sample" in command for _, command in commands), BLOCKS[0]
    langs = [b.lang for b in BLOCKS]
    assert langs.count("python") >= 5 and langs.count("console") >= 3, langs
