"""Keywords and speech on an alignment's tiers: choosing the tier, finding phrases, speech runs.

* `select_word_tier` — find the word (or phone) tier the way MFA, FAVE and MAUS name it,
  per speaker on multi-speaker files (`speakers` lists them); `select_word_tiers` also takes
  ``speaker="all"`` (every speaker's tier, each with its speaker);
* `find_phrase` — every occurrence of a keyword or phrase (case-insensitive,
  consecutive words, silences skipped), anchored at its end, start or centre; `phrase_times`
  gives only the anchor times (what `anchorprep align` needs, without a `Match` per occurrence);
* `speech_run_starts` — the starts of speech runs (non-silence after a pause).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import deque
from dataclasses import dataclass
from itertools import chain, islice, repeat
from operator import attrgetter, le
from typing import Iterable, Literal, Sequence

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.model import Alignment, Tier
from anchorprep.sources.text import SILENCE_LABELS, UNKNOWN_LABELS, is_silence, normalise_label

#: Auto-selected tier names per level, in order of preference (compared case-insensitively).
#: `ORT`/`MAU` are BAS WebMAUS's orthography and phone-segment tiers.
LEVEL_TIER_NAMES = {
    "words": ("words", "word", "ort"),
    "phones": ("phones", "phone", "mau"),
}

#: The level suffixes of per-speaker tiers: MFA writes "{speaker} - words", FAVE "{speaker} - word".
LEVEL_SPEAKER_SUFFIXES = {"words": ("words", "word"), "phones": ("phones", "phone")}

_SPEAKER_SEPARATOR = " - "

#: ``speaker=ALL_SPEAKERS`` selects every speaker's tier (`select_word_tiers`); a speaker
#: literally named "all" is chosen with `tier` ("all - words").
ALL_SPEAKERS = "all"

Edge = Literal["end", "start", "centre", "center"]
Level = Literal["words", "phones"]


@dataclass(frozen=True)
class Match:
    """One occurrence of a keyword: its span, the anchor `time` at the chosen edge, the tier text."""

    start: float
    end: float
    time: float
    text: str


# --------------------------------------------------------------------------------------------
# Tier selection


_LEVEL_NAMES = {"words": "words", "word": "words", "phones": "phones", "phone": "phones"}


def _check_level(level: str) -> str:
    normalised = _LEVEL_NAMES.get(level)
    if normalised is None:
        raise UsageError(f"level must be 'words' or 'phones', got {level!r}")
    return normalised


def _speaker_tiers(alignment: Alignment, level: str) -> dict[str, Tier]:
    """Per-speaker interval tiers of `level`, keyed by speaker, preferring the MFA spelling."""
    tiers = alignment.tiers
    return {spk: tiers[i] for spk, i in _layout(tiers, level)[0].items()}


def _plain_tier(alignment: Alignment, level: str) -> Tier | None:
    """The speaker-less tier of `level` ("words", "word", "ORT", ...), by name preference."""
    index = _layout(alignment.tiers, level)[1]
    return None if index is None else alignment.tiers[index]


def _layout(tiers: Sequence[Tier], level: str) -> tuple[dict[str, int], int | None]:
    """Where `level`'s tiers are among `tiers`: per-speaker tiers (speaker -> index, file order)
    and the speaker-less tier's index. A corpus repeats a few tier layouts (names and kinds), so
    the name analysis runs once per layout (`_TIER_LAYOUTS`)."""
    key = (level, *map(_NAME_AND_KIND, tiers))
    found = _TIER_LAYOUTS.get(key)
    if found is None:
        if len(_TIER_LAYOUTS) >= 4096:
            _TIER_LAYOUTS.clear()
        found = _TIER_LAYOUTS[key] = _analyse_layout(key[1:], level)
    return found


_TIER_LAYOUTS: dict[tuple, tuple[dict[str, int], int | None]] = {}
_NAME_AND_KIND = attrgetter("name", "kind")


def _analyse_layout(names_kinds: Sequence[tuple[str, str]], level: str) -> tuple[dict[str, int], int | None]:
    found: dict[str, tuple[int, int]] = {}
    suffixes = LEVEL_SPEAKER_SUFFIXES[level]
    by_name: dict[str, int] = {}
    for index, (name, kind) in enumerate(names_kinds):
        if kind != "interval":
            continue
        by_name.setdefault(name.strip().casefold(), index)
        speaker, sep, suffix = name.rpartition(_SPEAKER_SEPARATOR)
        suffix, speaker = suffix.strip().casefold(), speaker.strip()
        if not sep or not speaker or suffix not in suffixes:
            continue
        rank = suffixes.index(suffix)
        if speaker not in found or rank < found[speaker][0]:
            found[speaker] = (rank, index)
    plain = next((by_name[name] for name in LEVEL_TIER_NAMES[level] if name in by_name), None)
    return {spk: index for spk, (_, index) in found.items()}, plain


def speakers(alignment: Alignment, level: Level = "words") -> list[str]:
    """Speakers that have their own `level` tier ("{speaker} - words"), in file order."""
    return list(_speaker_tiers(alignment, _check_level(level)))


def select_word_tier(
    alignment: Alignment,
    tier: str | None = None,
    speaker: str | None = None,
    level: Level = "words",
) -> Tier:
    """Pick the tier keywords are matched on.

    * `tier` given: that tier (exact name, else a unique case-insensitive match); `speaker` and
      `level` are then ignored.
    * Otherwise, per-speaker tiers named ``"{speaker} - words"`` (MFA) or ``"{speaker} - word"``
      (FAVE; ``phones``/``phone`` for ``level="phones"``): with `speaker` given, that speaker's
      tier; without, the only speaker's tier, and an `InputError` listing the speakers when
      there are several.
    * Otherwise a speaker-less tier named ``words``, ``word`` or ``ORT`` (MAUS) — for phones
      ``phones``, ``phone`` or ``MAU`` — compared case-insensitively. MFA writes these names
      when a file has one speaker, so a `speaker` given for such a file is accepted unless the
      reader recorded other speakers in ``alignment.meta["speakers"]``.

    Only interval tiers are chosen automatically. Raises `InputError` listing the tiers present
    when nothing fits.
    """
    if tier is not None:
        return _explicit_tier(alignment, tier)
    level = _check_level(level)
    tiers = alignment.tiers
    speaker_index, plain_index = _layout(tiers, level)
    plain = None if plain_index is None else tiers[plain_index]
    if speaker is None and plain is not None:
        return plain
    per_speaker = {spk: tiers[i] for spk, i in speaker_index.items()}
    if speaker is not None:
        return _speaker_tier(alignment, per_speaker, plain, speaker, level)
    if plain is not None:
        return plain
    if len(per_speaker) == 1:
        return next(iter(per_speaker.values()))
    if per_speaker:
        raise InputError(
            f"{len(per_speaker)} speakers have {level} tiers ({_quoted(per_speaker)}); "
            "choose one with `speaker` (\"all\" takes every speaker's)",
            alignment.path,
        )
    raise InputError(
        f"no {level} tier found: looked for {_quoted(LEVEL_TIER_NAMES[level])} or "
        f"'<speaker> - {LEVEL_SPEAKER_SUFFIXES[level][0]}'; tiers present: "
        f"{_quoted(alignment.tier_names)}; pass `tier` to choose one",
        alignment.path,
    )


@dataclass(frozen=True)
class SpeakerTier:
    """A tier keywords are matched on, and its speaker (None: the file does not name one)."""

    speaker: str | None
    tier: Tier


def select_word_tiers(
    alignment: Alignment,
    tier: str | None = None,
    speaker: str | None = None,
    level: Level = "words",
) -> list[SpeakerTier]:
    """The tiers keywords are matched on, with their speakers.

    ``speaker="all"`` (`ALL_SPEAKERS`) gives every per-speaker tier (``"{speaker} - words"``, in
    file order) with its speaker; a file without per-speaker tiers gives its speaker-less tier
    with speaker None (`select_word_tier`'s rules, so a file with neither is an `InputError`).
    Any other `speaker` (or `tier`) gives the one tier `select_word_tier` picks, with speaker
    None: a single chosen speaker is not recorded per anchor.
    """
    if speaker != ALL_SPEAKERS or tier is not None:
        return [SpeakerTier(None, select_word_tier(alignment, tier=tier, speaker=speaker, level=level))]
    per_speaker = _speaker_tiers(alignment, _check_level(level))
    if per_speaker:
        return [SpeakerTier(name, t) for name, t in per_speaker.items()]
    return [SpeakerTier(None, select_word_tier(alignment, level=level))]


def _explicit_tier(alignment: Alignment, name: str) -> Tier:
    for t in alignment.tiers:
        if t.name == name:
            return t
    folded = [t for t in alignment.tiers if t.name.casefold() == name.casefold()]
    if len(folded) == 1:
        return folded[0]
    raise InputError(f"no tier named {name!r}; tiers present: {_quoted(alignment.tier_names)}", alignment.path)


def _speaker_tier(
    alignment: Alignment, per_speaker: dict[str, Tier], plain: Tier | None, speaker: str, level: str
) -> Tier:
    if speaker in per_speaker:
        return per_speaker[speaker]
    folded = [t for spk, t in per_speaker.items() if spk.casefold() == speaker.strip().casefold()]
    if len(folded) == 1:
        return folded[0]
    known = alignment.meta.get("speakers")
    if not per_speaker and plain is not None and (not known or speaker in known):
        return plain
    listed = list(per_speaker) or list(known or [])
    raise InputError(
        f"no {level} tier for speaker {speaker!r}; speakers in this file: "
        f"{_quoted(listed) if listed else '(none named)'}; tiers present: {_quoted(alignment.tier_names)}",
        alignment.path,
    )


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(n) for n in names)


# --------------------------------------------------------------------------------------------
# Keyword matching


def _label_parts(label: str, silence: frozenset[str], unknown: frozenset[str]) -> tuple[str, ...]:
    """The words a label contributes to phrase matching, normalised; () for a silence.

    A label with spaces gives several words; an out-of-vocabulary marker is one word spelled
    as the marker itself ("<unk>", "spn"), which only a phrase word spelling that marker
    equals; a label that is nothing but punctuation gives none.
    """
    folded = label.strip().casefold()
    if folded in silence:
        return ()
    if folded in unknown:
        return (folded,)
    return tuple(p for p in (normalise_label(w) for w in label.split()) if p)


class _PartsCache(dict):
    """label -> `_label_parts(label, ...)` for one (silence, unknown) pair, filled on demand.

    Corpora repeat a small vocabulary, so after the first utterances almost every label is a
    dict hit (`normalise_label` does Unicode normalisation and a category lookup per character).
    `multi` holds the labels of several words seen since the last `clear` (never fewer: it is
    cleared only with the rest, between searches).
    """

    __slots__ = ("silence", "unknown", "first", "multi", "known", "starting")
    MAX_LABELS = 200_000  # memory bound per worker; cleared (not evicted one by one) when full

    def __init__(self, silence: frozenset[str], unknown: frozenset[str]) -> None:
        super().__init__()
        self.silence, self.unknown = silence, unknown
        self.first = _FirstWords(self)  # label -> its first word ("" for none)
        self.multi: set[str] = set()
        self.known: set[str] = set()  # the labels in `first`
        self.starting: dict[str, set[str]] = {}  # word -> the labels in `first` that start with it

    def __missing__(self, label: str) -> tuple[str, ...]:
        parts = self[label] = _label_parts(label, self.silence, self.unknown)
        if len(parts) > 1:
            self.multi.add(label)
        return parts

    def clear(self) -> None:
        super().clear()
        self.first.clear()
        self.multi.clear()
        self.known.clear()
        self.starting.clear()

    def starting_labels(self, word: str, labels: list[str]) -> set[str]:
        """The labels among `labels` whose first word is `word` (`any_starts_with`'s set)."""
        starting = self._starting(word, labels)
        return starting.intersection(labels) if starting is not None else _NO_LABELS

    def any_starts_with(self, word: str, labels: list[str]) -> bool:
        """Whether any of `labels` starts with `word` (C-level set passes, after the first sight
        of each label)."""
        starting = self._starting(word, labels)
        return starting is not None and not starting.isdisjoint(labels)

    def _starting(self, word: str, labels: list[str]) -> set[str] | None:
        """Every label seen so far whose first word is `word`, after `labels` are seen."""
        if not self.known.issuperset(labels):
            deque(map(self.first.__getitem__, labels), 0)
        return self.starting.get(word)


_NO_LABELS: frozenset[str] = frozenset()


class _FirstWords(dict):
    """label -> the first of its `_PartsCache` words, "" for none (filled on demand): whether a
    tier holds a phrase's first word at all is one C-level scan of this map."""

    __slots__ = ("parts",)

    def __init__(self, parts: _PartsCache) -> None:
        super().__init__()
        self.parts = parts

    def __missing__(self, label: str) -> str:
        parts = self.parts
        words = parts[label]
        first = self[label] = words[0] if words else ""
        parts.known.add(label)
        parts.starting.setdefault(first, set()).add(label)
        return first


_PARTS_CACHES: dict[tuple[frozenset[str], frozenset[str]], _PartsCache] = {}


def _parts_cache(silence: frozenset[str], unknown: frozenset[str]) -> _PartsCache:
    key = (silence, unknown)
    cache = _PARTS_CACHES.get(key)
    if cache is None:
        if len(_PARTS_CACHES) >= 16:
            _PARTS_CACHES.clear()
        cache = _PARTS_CACHES[key] = _PartsCache(silence, unknown)
    elif len(cache) >= _PartsCache.MAX_LABELS:
        cache.clear()
    return cache


def _folded(values: Iterable[str], default: Iterable[str], default_folded: frozenset[str]) -> frozenset[str]:
    if values is default:
        return default_folded
    return frozenset(v.strip().casefold() for v in values)


_SILENCE_FOLDED = frozenset(s.strip().casefold() for s in SILENCE_LABELS)
_UNKNOWN_FOLDED = frozenset(u.strip().casefold() for u in UNKNOWN_LABELS)


def _phrase_words(phrase: str, unknown: frozenset[str]) -> list[str]:
    """The phrase's words, normalised like labels; an unknown marker is kept as spelled."""
    key = (phrase, unknown)
    cached = _PHRASE_WORDS.get(key)
    if cached is None:
        if len(_PHRASE_WORDS) >= 1024:
            _PHRASE_WORDS.clear()
        cached = _PHRASE_WORDS[key] = tuple(_split_phrase(phrase, unknown))
    return list(cached)


_PHRASE_WORDS: dict[tuple[str, frozenset[str]], tuple[str, ...]] = {}


def _split_phrase(phrase: str, unknown: frozenset[str]) -> list[str]:
    words = []
    for p in phrase.split():
        folded = p.casefold()
        word = folded if folded in unknown else normalise_label(p)
        if word:
            words.append(word)
    return words


def _edge_time(start: float, end: float, edge: str) -> float:
    if edge == "end":
        return end
    if edge == "start":
        return start
    return (start + end) / 2.0


def _check_edge(edge: str) -> str:
    if edge not in ("end", "start", "centre", "center"):
        raise UsageError(f"edge must be 'end', 'start' or 'centre', got {edge!r}")
    return edge


def find_phrase(
    tier: Tier,
    phrase: str,
    edge: Edge = "end",
    silence: Iterable[str] = SILENCE_LABELS,
    *,
    regex: bool = False,
    match_unknown: bool = False,
    unknown: Iterable[str] = UNKNOWN_LABELS,
) -> list[Match]:
    """Every occurrence of `phrase` on `tier`, in time order, anchored at `edge`.

    Phrase matching (the default): `phrase` is split on whitespace and matched as a
    consecutive sequence of labels, skipping silence intervals (labels in `silence` after
    stripping and case-folding, so ``hey <sil> computer`` matches "hey computer"). Labels and
    phrase words are compared after Unicode NFC normalisation and case-folding, with leading
    and trailing punctuation (Unicode category P: ``, . ! ? " ' « » 。`` ...) stripped from
    each, so ``press,`` and ``"Yes."`` match "press" and "yes", while inner characters such as
    the apostrophe of "i'm" or the hyphen of "chad-like" must match. A label that is nothing
    but punctuation is skipped like a silence. A label containing spaces is several words; a
    match must begin at the first word of a label and end at the last word of a label, so the
    times are always real interval boundaries (an utterance-level label matches only as a
    whole). Words are compared whole: a CJK word "八十年代" is not matched by "八十", and
    words written without spaces between them on the tier must be given the same way.
    Occurrences do not overlap: after a match the search resumes after it.

    Out-of-vocabulary markers (`unknown`, e.g. MFA's ``<unk>`` and ``spn``) occupy a word
    position (``hey <unk> computer`` does not match "hey computer") but never match a phrase
    word — their spelling says nothing about what was said — unless the phrase spells the
    marker itself (``find_phrase(phones, "spn")`` finds the OOV phones).

    With ``regex=True``, `phrase` is a regular expression matched (``re.fullmatch``, case
    insensitive) against each non-silence label on its own (stripped of surrounding whitespace),
    e.g. ``"AH[012]"`` on a phone tier; unknown markers are skipped unless `match_unknown` is
    True (``match_unknown`` only affects regex matching).

    `edge` is "end" (the keyword end, the default), "start" or "centre" ("center" is
    accepted) of the matched span. Matching on a phone tier uses the same function with the
    phone tier. Raises `UsageError` for an empty phrase, an invalid regex or a bad `edge`.
    """
    starts, ends, labels, spans = _spans(tier, phrase, edge, silence, regex, match_unknown, unknown)
    return [
        Match(start=starts[a], end=ends[b], time=_edge_time(starts[a], ends[b], edge),
              text=" ".join(labels[k] for k in ks))
        for a, b, ks in spans
    ]


def phrase_times(
    tier: Tier,
    phrase: str,
    edge: Edge = "end",
    silence: Iterable[str] = SILENCE_LABELS,
    *,
    regex: bool = False,
    match_unknown: bool = False,
    unknown: Iterable[str] = UNKNOWN_LABELS,
) -> list[float]:
    """``[m.time for m in find_phrase(...)]`` (same arguments), without building the matches."""
    starts, ends, _, spans = _spans(tier, phrase, edge, silence, regex, match_unknown, unknown)
    if edge == "end":
        return [ends[b] for _, b, _ in spans]
    return [_edge_time(starts[a], ends[b], edge) for a, b, _ in spans]


class KeywordSearch:
    """Several phrases searched on one tier at a time, with what depends only on the phrases
    prepared once (per job, not per utterance).

    ``search.times(tier)`` is ``[(t, phrase) for phrase in phrases for t in phrase_times(tier,
    phrase, edge=edge, regex=regex)]`` (default silence and unknown labels), the same errors
    included: a search that `phrase_times` would refuse (a bad `edge`, a phrase without words,
    regex matching) is left to `phrase_times` itself, on every call.
    """

    __slots__ = ("phrases", "edge", "regex", "_words")

    def __init__(self, phrases: Sequence[str], edge: Edge = "end", *, regex: bool = False) -> None:
        self.phrases, self.edge, self.regex = tuple(phrases), edge, regex
        words = [_split_phrase(phrase, _UNKNOWN_FOLDED) for phrase in self.phrases]
        plain = not regex and edge in ("end", "start", "centre", "center") and all(words)
        self._words = tuple(zip(self.phrases, words)) if plain else None

    def times(self, tier: Tier) -> list[tuple[float, str]]:
        if self._words is None:
            return [(t, phrase) for phrase in self.phrases
                    for t in phrase_times(tier, phrase, edge=self.edge, regex=self.regex)]
        labels = tier.columns()[2]
        text = _ascii_text(labels)
        found: list[tuple[float, str]] = []
        cache = one_word_lines = None
        for phrase, words in self._words:
            first = words[0]
            if text:
                offsets = _first_word_offsets(first, text)
                if not offsets:
                    continue  # (most utterances: no label is looked up)
            if cache is None:
                cache = _parts_cache(_SILENCE_FOLDED, _UNKNOWN_FOLDED)
                starts, ends, ordered = _time_ordered(tier)
                if text and ordered is labels:
                    one_word_lines = _one_word_lines(text, len(labels))
            if one_word_lines:
                positions = _lines_starting_with(first, offsets, text, labels, cache.first)
            else:
                spellings = cache.starting_labels(first, labels)
                if not spellings:
                    continue
                if cache.multi and not cache.multi.isdisjoint(labels):
                    positions = None
                else:
                    positions = [i for i, label in enumerate(ordered) if label in spellings]
            if positions is None:
                spans = [(a, b) for a, b, _ in _phrase_spans_multi(ordered, words, cache)]
            else:
                spans = _one_word_spans(ordered, positions, words, cache.first)
            if self.edge == "end":
                found += [(ends[b], phrase) for _, b in spans]
            else:
                found += [(_edge_time(starts[a], ends[b], self.edge), phrase) for a, b in spans]
        return found


def _ascii_text(labels: list[str]) -> str:
    """The labels joined by newlines and lower-cased when that is all ASCII; "" otherwise."""
    try:
        text = "\n".join(labels)
    except TypeError:
        return ""
    return text.lower() if text.isascii() else ""


#: ASCII characters that can delimit a label's first word: whitespace (`str.split`) and
#: punctuation (Unicode category P, stripped by `normalise_label`).
_WORD_BOUNDARIES = frozenset(c for c in map(chr, range(128))
                             if c.isspace() or unicodedata.category(c).startswith("P"))
#: ASCII whitespace (`str.split`'s) other than the newline `_ascii_text` joins labels with.
_INNER_SPACE = tuple(c for c in map(chr, range(128)) if c.isspace() and c != "\n")


def _first_word_offsets(word: str, text: str) -> list[int]:
    """Where `word` occurs in `text` (from `_ascii_text`) between two `_WORD_BOUNDARIES` or text
    ends: an ASCII label's first word (`_label_parts`) is a piece of the lower-cased label
    delimited by whitespace, punctuation or the label's ends, so every label whose first word
    is `word` holds one of these offsets, and none means no such label (a substring search
    instead of a lookup per label)."""
    size, end = len(text), len(word)
    offsets = []
    at = text.find(word)
    while at >= 0:
        after = at + end
        if ((at == 0 or text[at - 1] in _WORD_BOUNDARIES)
                and (after == size or text[after] in _WORD_BOUNDARIES)):
            offsets.append(at)
        at = text.find(word, at + 1)
    return offsets


def _one_word_lines(text: str, count: int) -> bool:
    """Whether `text` (`count` labels from `_ascii_text`) has one line per label and no other
    whitespace: every label then holds one word or none."""
    if text.count("\n") != count - 1:
        return False
    for space in _INNER_SPACE:  # (one C-level character search each)
        if space in text:
            return False
    return True


def _lines_starting_with(word: str, offsets: list[int], text: str, labels: list[str],
                         first_of: dict[str, str]) -> list[int]:
    """The indices (ascending) of the labels whose first word is `word`, given
    `_first_word_offsets` in `text` of one line per label (`_one_word_lines`): each offset's line
    is checked with `first_of` (the label cache)."""
    positions: list[int] = []
    line = -1
    for at in offsets:
        index = text.count("\n", 0, at)
        if index != line:
            line = index
            if first_of[labels[index]] == word:
                positions.append(index)
    return positions


def _one_word_spans(labels: list[str], positions: list[int], words: list[str],
                    first_of: dict[str, str]) -> list[tuple[int, int]]:
    """(first interval, last interval) of each occurrence of `words`, as `_phrase_spans` finds
    them on time-ordered labels of one word or none: `positions` (ascending) are the labels
    whose first word is ``words[0]``, `first_of` gives each label's first word ("" for none)."""
    rest = words[1:]
    size = len(labels)
    spans: list[tuple[int, int]] = []
    last = -1
    for i in positions:
        if i <= last:
            continue  # inside the previous match (occurrences do not overlap)
        k = i + 1
        end = i
        for word in rest:
            while k < size and not first_of[labels[k]]:
                k += 1
            if k == size or first_of[labels[k]] != word:
                break
            end = k
            k += 1
        else:
            spans.append((i, end))
            last = end
    return spans


def _spans(tier: Tier, phrase: str, edge: str, silence: Iterable[str], regex: bool, match_unknown: bool,
           unknown: Iterable[str]) -> tuple[list[float], list[float], list[str], list[tuple[int, int, list[int]]]]:
    """The tier's time-ordered columns and `find_phrase`'s spans on them."""
    edge = _check_edge(edge)
    silence_set = _folded(silence, SILENCE_LABELS, _SILENCE_FOLDED)
    unknown_set = _folded(unknown, UNKNOWN_LABELS, _UNKNOWN_FOLDED)
    if regex:
        starts, ends, labels = _time_ordered(tier)
        return starts, ends, labels, _regex_spans(labels, phrase, silence_set, unknown_set, match_unknown)
    words = _phrase_words(phrase, unknown_set)
    if not words:
        raise UsageError(f"keyword phrase {phrase!r} has no words")
    cache = _parts_cache(silence_set, unknown_set)
    if not cache.any_starts_with(words[0], tier.columns()[2]):  # in any order: no need to sort first
        return [], [], [], []  # no label starts with the phrase's first word (most utterances)
    starts, ends, labels = _time_ordered(tier)
    firsts = list(map(cache.first.__getitem__, labels))  # each label's first word ("" for none)
    return starts, ends, labels, _phrase_spans(labels, firsts, words, cache)


def _time_ordered(tier: Tier) -> tuple[list[float], list[float], list[str]]:
    """The tier's columns (starts, ends, labels), sorted by (start, end) if they are not in order."""
    starts, ends, labels = tier.columns()
    if _nondecreasing(starts):
        return starts, ends, labels
    ordered = sorted(tier.intervals, key=lambda iv: (iv.start, iv.end))
    return [iv.start for iv in ordered], [iv.end for iv in ordered], [iv.label for iv in ordered]


def _nondecreasing(values: list) -> bool:
    """``all(map(operator.le, values, values[1:]))``. For numbers whose sum is finite (no NaN,
    no infinity) that is ``sorted(values) == values``, which runs C-level float comparisons
    (about 3x faster on a tier's starts); anything else takes the pairwise test."""
    try:
        total = sum(values)
    except TypeError:
        total = math.nan
    if total - total == 0:
        return sorted(values) == values
    return all(map(le, values, islice(values, 1, None)))


def _phrase_spans(labels: Sequence[str], firsts: list[str], words: list[str],
                  cache: _PartsCache) -> list[tuple[int, int, list[int]]]:
    """(first interval, last interval, matched interval indices) of each occurrence.

    The tier's words in time order (silences skipped, a label with spaces giving several) are
    searched for the phrase's words as a consecutive run that starts at the first word of a
    label and ends at the last word of a label; after a match the search resumes after it.
    ``firsts`` holds each label's first word ("" for none).
    """
    if cache.multi and not cache.multi.isdisjoint(labels):
        return _phrase_spans_multi(labels, words, cache)
    # Every label is one word or none: a match is the first word's label followed by the next
    # n - 1 word-holding labels, which spell the rest of the phrase (`_one_word_spans`).
    first = words[0]
    positions = [i for i, label_first in enumerate(firsts) if label_first == first]
    return [(a, b, [k for k in range(a, b + 1) if firsts[k]])
            for a, b in _one_word_spans(labels, positions, words, cache.first)]


def _phrase_spans_multi(labels: Sequence[str], words: list[str],
                        cache: _PartsCache) -> list[tuple[int, int, list[int]]]:
    """`_phrase_spans` for tiers with labels of several words."""
    parts = list(map(cache.__getitem__, labels))
    texts = list(chain.from_iterable(parts))  # every word of the tier, in order
    owner = list(chain.from_iterable(map(repeat, range(len(parts)), map(len, parts))))  # each word's interval
    first = words[0]
    n, count = len(words), len(texts)
    spans: list[tuple[int, int, list[int]]] = []
    i = 0
    while True:
        try:
            i = texts.index(first, i)
        except ValueError:
            break
        j = i + n - 1  # the window's last word
        if j >= count:
            break
        if (
            (i == 0 or owner[i - 1] != owner[i])  # starts a label
            and (j == count - 1 or owner[j + 1] != owner[j])  # ends a label
            and texts[i : j + 1] == words
        ):
            spans.append((owner[i], owner[j], sorted(set(owner[i : j + 1]))))
            i = j + 1
        else:
            i += 1
    return spans


def _regex_spans(
    labels: Sequence[str],
    pattern: str,
    silence: frozenset[str],
    unknown: frozenset[str],
    match_unknown: bool,
) -> list[tuple[int, int, list[int]]]:
    try:
        compiled = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise UsageError(f"invalid label regex {pattern!r}: {exc}") from None
    spans: list[tuple[int, int, list[int]]] = []
    for i, label in enumerate(labels):
        folded = label.strip().casefold()
        if folded in silence or (folded in unknown and not match_unknown):
            continue
        if compiled.fullmatch(unicodedata.normalize("NFC", label.strip())):
            spans.append((i, i, [i]))
    return spans


def speech_run_starts(tier: Tier, min_pause_s: float = 0.0) -> list[float]:
    """Starts of speech runs on `tier`: non-silence intervals after at least `min_pause_s` of
    silence (or at the start), in time order. Out-of-vocabulary markers (`<unk>`, `spn`) count
    as speech; the first start is the alignment's speech onset."""
    begins, ends, labels = tier.columns()
    order: Iterable[int] = range(len(begins))
    if not all(map(le, begins, islice(begins, 1, None))):
        order = sorted(order, key=begins.__getitem__)  # stable: ties keep file order
    starts, last_end = [], None
    for k in order:
        if is_silence(labels[k]):
            continue
        start, end = begins[k], ends[k]
        if last_end is None or start - last_end >= min_pause_s and start > last_end:
            starts.append(start)
        last_end = end if last_end is None else max(last_end, end)
    return starts
