"""The commands that look at a finished run: `validate`, `stats` and `plot`."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from anchorprep.cli.common import Gain, Kernel, Width, WidthAfter, WidthBefore, usage_guard
from anchorprep.errors import UsageError


@usage_guard
def validate(
    run: Annotated[str, typer.Argument(help="Output folder of a run (data/ shards, manifest.json, errors.jsonl, report.json).")],
    deep: Annotated[int, typer.Option("--deep", help="Also re-derive N sampled rows from their inputs and compare every column.")] = 0,
    inputs: Annotated[Optional[str], typer.Option("--inputs", help="The manifest, folder or CTM the run read: checks that each shard holds its planned items in input order (and --deep needs it for align and accel runs).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="With --deep: seed of the row sample.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    max_problems: Annotated[int, typer.Option("--max-problems", help="Problems printed (--json lists up to 200 per check and counts the rest).")] = 50,
) -> None:
    """Check a run against the shard contract; exit 0 when valid, 1 with the problems found."""
    from anchorprep.inspect.validate import validate_run

    report = validate_run(run, deep=deep, inputs=inputs, seed=seed)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_report(report, max_problems)
    raise typer.Exit(0 if report.ok else 1)


def print_report(report, max_problems: int = 50) -> None:
    from rich.console import Console
    from rich.markup import escape

    from anchorprep.inspect.validate import MAX_PROBLEMS_PER_CHECK

    console = Console(highlight=False, soft_wrap=True)
    checked = report.checked
    what = (f"{checked.get('shards', 0)} shard(s), {checked.get('rows', 0):,} row(s), {checked.get('anchors', 0):,} "
            f"anchor(s), {checked.get('error_lines', 0):,} error line(s)")
    if "deep_rows" in checked:
        what += f", {checked['deep_rows']} row(s) re-derived"
    for note in report.notes:
        console.print(f"[dim]note:[/dim] {escape(note)}")
    if report.ok:
        console.print(f"[green]valid[/green] {escape(str(report.out))}: {what}; "
                      f"{len(checked.get('checks', []))} checks passed")
        return
    console.print(f"{report.problem_count} problem(s) in {escape(str(report.out))}:")
    for problem in report.problems[:max_problems]:
        console.print(escape(str(problem)))
    hidden = report.problem_count - min(len(report.problems), max_problems)
    if hidden:
        console.print(f"… and {hidden:,} more (--json lists up to {MAX_PROBLEMS_PER_CHECK} per check and counts the rest)")
    by_check = ", ".join(f"{check} {count}" for check, count in report.counts_by_check().items())
    console.print(f"[red]invalid[/red] {escape(str(report.out))}: {what}; problems by check: {by_check}")


@usage_guard
def stats(
    run: Annotated[str, typer.Argument(help="Output folder of a run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the statistics as JSON.")] = False,
    png: Annotated[Optional[str], typer.Option("--png", help="Also write histograms to this PNG (pip install 'anchorprep\\[plot]').")] = None,
    other_edge: Annotated[Optional[str], typer.Option("--other-edge", help="An align run over the same items with the other --edge (start/end): keyword durations = end - start.")] = None,
) -> None:
    """Utterances, anchors, anchor positions, durations and errors of a run."""
    from anchorprep.inspect.stats import run_stats, stats_figure

    stats = run_stats(run, other_edge=other_edge)
    if png is not None:
        stats_figure(stats, png)
    if as_json:
        typer.echo(json.dumps(stats.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_stats(stats.to_dict())
    if png is not None:
        typer.echo(f"wrote {png}", err=True)


def _n(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}"
    return f"{value:,}"


def _dist_row(table, name: str, block: dict, unit: str = "") -> None:
    if not block.get("count"):
        table.add_row(name, "0", *["-"] * 6)
        return
    table.add_row(name, _n(block["count"]), *(f"{block[k]:.3f}{unit}" for k in ("min", "p5", "median", "mean", "p95", "max")))


def print_stats(stats: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False, soft_wrap=True)
    run, utts, anchors, frames = stats["run"], stats["utterances"], stats["anchors"], stats["frames"]
    grid = run["grid"]
    overview = Table(title=f"anchorprep stats: {escape(stats['out'])}", show_header=False)
    overview.add_row("command / source", f"{run['command']} / {run['source']}")
    overview.add_row("grid", f"{grid.get('sample_rate')} Hz, shift {grid.get('frame_shift_ms')} ms, length "
                             f"{grid.get('frame_length_ms')} ms, snip_edges {grid.get('snip_edges')}, subsampling "
                             f"{grid.get('subsampling')}; anchor rule {run['anchor_rule']}")
    targets = run.get("targets") or {}
    if "positive_window" in targets:
        overview.add_row("targets", f"positive window {targets['positive_window']}, guard {targets.get('guard', 0)}")
    elif targets:
        overview.add_row("targets", f"{targets.get('mode')}: {targets.get('rule', '')}")
    if run.get("combine"):
        overview.add_row("distance uses", f"{run['combine'].get('distance_sources')} (agree within "
                                          f"{run['combine'].get('agree_within_s')} s)")
    overview.add_row("utterances in / written / failed", f"{_n(utts['in'])} / {_n(utts['written'])} / {_n(utts['failed'])}")
    share = f" ({utts['positive_share']:.1%} positive)" if utts["positive_share"] is not None else ""
    overview.add_row("positives / negatives", f"{_n(utts['positives'])} / {_n(utts['negatives'])}{share}")
    overview.add_row("audio", f"{stats['durations_s'].get('total_hours', 0):.3f} h, {_n(frames['total'])} frames")
    overview.add_row("target frames", ", ".join(f"{k} {_n(v)}" for k, v in frames["targets"].items()))
    overview.add_row("anchors", f"{_n(anchors['total'])}; clipped: {anchors['clipped_after_end']} past the end, "
                                f"{anchors['clipped_before_start']} before the start")
    for key, value in stats["report_counters"].items():
        overview.add_row(key.replace("_", " "), _n(value))
    console.print(overview)

    dist = Table(title="distributions")
    for column in ("", "count", "min", "p5", "median", "mean", "p95", "max"):
        dist.add_column(column, justify="right" if column else "left")
    _dist_row(dist, "utterance duration (s)", stats["durations_s"])
    _dist_row(dist, "anchors per utterance", anchors["per_utterance"])
    _dist_row(dist, "anchor time (s)", anchors["time_s"])
    _dist_row(dist, "anchor position (time / duration)", anchors["relative_position"])
    events = stats["event_durations"]
    if events.get("available"):
        _dist_row(dist, f"{events['kind']} duration (s)", events["seconds"])
    console.print(dist)
    if not events.get("available"):
        console.print(f"[dim]event durations: {escape(events['reason'])}[/dim]")
    elif events.get("unpaired"):
        console.print(f"[dim]{events['unpaired']} {events['kind']} edge(s) had no partner[/dim]")

    per = anchors["per_utterance"].get("histogram", {})
    if per:
        console.print("anchors per utterance: " + ", ".join(f"{k}: {_n(v)}" for k, v in sorted(per.items(), key=lambda kv: int(kv[0]))))
    by = Table(title="anchors by label and source")
    for column in ("label", "source", "anchors"):
        by.add_column(column, justify="right" if column == "anchors" else "left")
    for row in anchors["by_label_and_source"]:
        by.add_row(escape(row["label"]), row["source"], _n(row["count"]))
    console.print(by)

    errors = stats["errors"]
    if errors["count"]:
        stages = Table(title=f"errors: {errors['count']:,} (errors.jsonl)")
        for column in ("stage", "count", "reason (grouped)", "example"):
            stages.add_column(column, overflow="fold")
        for group in errors["by_reason"][:20]:
            stages.add_row(group["stage"], _n(group["count"]), escape(group["reason"]), escape(str(group["example_utt_id"])))
        console.print(stages)
        if len(errors["by_reason"]) > 20:
            console.print(f"… {len(errors['by_reason']) - 20} more reason groups (--json lists them)")
        console.print("errors by stage: " + ", ".join(f"{k} {_n(v)}" for k, v in errors["by_stage"].items()))
    else:
        console.print("errors: none")


EXTRA = "Extra panels (paths the shards do not store)"


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"`size` must look like WIDTHxHEIGHT in pixels (e.g. 1400x1000), got {text!r}") from None
    return width, height


@usage_guard
def plot(
    run: Annotated[str, typer.Argument(help="Output folder of a run.")],
    utt_id: Annotated[str, typer.Argument(help="The utterance to draw.")],
    out: Annotated[str, typer.Option("-o", "--out", help="PNG file to write.")],
    kernel: Kernel = None,
    width: Width = None,
    width_before: WidthBefore = None,
    width_after: WidthAfter = None,
    gain: Gain = None,
    alignment: Annotated[Optional[str], typer.Option("--alignment", help="Alignment file (TextGrid, MFA csv/json, CTM) to draw the word tier from.", rich_help_panel=EXTRA)] = None,
    accel: Annotated[Optional[str], typer.Option("--accel", help="Accelerometer file to draw the filtered signal and peaks from.", rich_help_panel=EXTRA)] = None,
    time_offset_s: Annotated[Optional[float], typer.Option("--time-offset-s", help="Utterance time of the sensor's first sample (default: the run's default_time_offset_s).", rich_help_panel=EXTRA)] = None,
    size: Annotated[str, typer.Option("--size", help="Image size WIDTHxHEIGHT in pixels.")] = "1400x1000",
    dpi: Annotated[int, typer.Option("--dpi", help="Dots per inch (font scale).")] = 100,
) -> None:
    """Draw one utterance: audio, alignment/VAD/accelerometer, anchors, distance, SAL weights, targets."""
    from anchorprep.inspect.plot import describe, plot_utterance

    result = plot_utterance(run, utt_id, out, kernel=kernel, width=width, width_before=width_before,
                            width_after=width_after, gain=gain, alignment=alignment, accel=accel,
                            time_offset_s=time_offset_s, size_px=_size(size), dpi=dpi)
    typer.echo(describe(result))
