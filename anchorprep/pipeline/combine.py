"""Multi-source anchors: which sources the distance uses, and agreement between sources.

For multi-modal trigger detection an utterance can carry, say, a VAD speech onset and an
accelerometer wrist-raise peak. Every anchor stays in the row with its source; `CombineOptions`
decides which of them the per-frame distance and targets are computed from:

* ``sources``: only anchors from these sources count (empty: all sources); a source kind such as
  ``alignment`` also matches its named sources (``alignment:alice``).
* ``agree_within_s``: with two or more sources, an anchor of the first (primary) source counts
  only if every other listed source has an anchor within this many seconds of it; utterances
  without an agreeing anchor become negatives for training (their anchors are still listed).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from anchorprep.anchors import source_kind
from anchorprep.errors import UsageError
from anchorprep.pipeline.rows import AnchorEvent


@dataclass(frozen=True)
class CombineOptions:
    sources: tuple[str, ...] = ()
    agree_within_s: float | None = None

    def __post_init__(self) -> None:
        if self.agree_within_s is not None:
            if self.agree_within_s < 0:
                raise UsageError("`agree_within_ms` must be >= 0")
            if len(self.sources) < 2:
                raise UsageError("agreement needs at least two `use_source` values (the first is the primary)")

    def settings(self) -> dict:
        return {"distance_sources": list(self.sources) or "all", "agree_within_s": self.agree_within_s,
                "primary_source": self.sources[0] if self.agree_within_s is not None else None}

    def select(self, events: list[AnchorEvent]) -> tuple[list[AnchorEvent], Counter]:
        """The events the distance uses, and counters of what agreement dropped."""
        used = [e for e in events if not self.sources or any(_is(e.source, s) for s in self.sources)]
        if self.agree_within_s is None:
            return used, Counter()
        primary, others = self.sources[0], self.sources[1:]
        agreeing = [
            e for e in used if _is(e.source, primary)
            and all(any(_is(o.source, other) and abs(o.time_s - e.time_s) <= self.agree_within_s for o in used)
                    for other in others)
        ]
        dropped = sum(_is(e.source, primary) for e in used) - len(agreeing)
        return agreeing, Counter(anchors_without_agreement=dropped)


def _is(source: str, wanted: str) -> bool:
    """Whether an anchor's `source` is the `use_source` value `wanted` (itself or its kind)."""
    return source == wanted or source_kind(source) == wanted
