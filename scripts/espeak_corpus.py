#!/usr/bin/env python3
"""Synthetic wake-phrase corpus whose word boundaries come from the synthesiser itself.

Speech is synthesised with the espeak-ng *library* (bound with ctypes), and every word and phone
boundary is taken from the library's own events (the sample index at which each word, phoneme,
pause and SSML ``<mark/>`` is rendered), not from a forced aligner. The corpus therefore has exact
reference alignments to test anchor derivation, VAD onsets and detection latency against.

System requirements (Debian/Ubuntu packages, not Python packages)::

    apt-get install -y espeak-ng libespeak-ng1

Per utterance it writes the audio (FLAC, or WAV with ``--wav``), an MFA-style long-format TextGrid
(tiers ``words`` and ``phones``, silences as empty intervals) and one row of ``manifest.csv``
(``utt_id,audio_path,alignment_path,speaker,text,split``, paths relative to the manifest); the
exact wake-phrase times, speech onsets and all random draws go to ``truth.json``.

Usage::

    python scripts/espeak_corpus.py OUT_DIR --positives 1000 --negatives 1000 --seed 0 --workers 2

How boundaries are derived (see `align_events`): espeak-ng reports, in the ``sample`` field of each
``espeak_EVENT``, the index of the output sample (22050 Hz) at which the event is rendered; that
is more precise than ``audio_position`` (whole milliseconds). A word starts at its WORD event, moved
past any pause phonemes that directly follow it, so the silent closure of a word-initial stop and
espeak's ~11 ms pre-pause before /h/, /s/, /D/ belong to the word, as in an aligner's output. A
phone runs from its PHONEME event to the next event. A word ends at the SSML ``<mark/>`` written
right after it (rendered where the word's last phone stops): before a pause the pause phoneme's own
event only comes after up to ~50 ms of silence, so the mark is the exact end; a mark that does not
fall inside the word's last phone is ignored (espeak misplaces marks next to an h-dropped "hey")
and the next event ends the word instead. Phone labels are espeak's phoneme mnemonics (``h eI k @ m
p j u: t 3``); phones it reports with zero duration (a coda /l/ it renders inside the vowel) are
dropped.

Determinism: espeak-ng keeps synthesis state between messages (the same text renders to different
bytes on a second call in one process), so every utterance is synthesised in a freshly forked
child of a process whose engine has never synthesised. Output bytes then depend only on the seed,
not on the order or the number of workers. POSIX only (uses ``os.fork``).
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import ctypes.util
import json
import math
import os
import pickle
import re
import selectors
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import soundfile as sf
import soxr
from praatio import textgrid

APT_HINT = "apt-get install -y espeak-ng libespeak-ng1"
LIBRARY_NAME = "libespeak-ng.so.1"

# speak_lib.h (API revision 12) constants.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_SSML = 0x10
_INIT_PHONEME_EVENTS = 0x0001
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4
EVENT_WORD, EVENT_MARK, EVENT_END, EVENT_PHONEME = 1, 3, 5, 7  # espeak_EVENT_TYPE values used here

DEFAULT_WAKE_PHRASE = "hey computer"

# Voice variant -> split. Valid and test voices use accents absent from train, so test speakers
# are unseen in both voice quality and accent.
DEFAULT_VOICES: tuple[tuple[str, str], ...] = (
    ("en-us", "train"),
    ("en-us+f2", "train"),
    ("en+m3", "train"),  # "en" is British English (SetVoiceByName does not accept "en-gb")
    ("en+f4", "train"),
    ("en-gb-scotland+m1", "train"),
    ("en-gb-scotland+f3", "train"),
    ("en-029+m2", "train"),
    ("en-029+f5", "train"),
    ("en-gb-x-rp+m4", "valid"),
    ("en-gb-x-gbclan+f2", "valid"),
    ("en-us-nyc+f4", "test"),
    ("en-gb-x-gbcwmd+m3", "test"),
)

# espeak-ng speaks some word pairs as one dictionary entry with a single WORD event ("in the",
# "on the"); the texts avoid them so that every word gets its own boundary.
COMMANDS: tuple[str, ...] = (
    "switch the kitchen lights on", "what's the weather like today", "set a timer for ten minutes",
    "play some jazz music", "call my sister", "remind me to water the plants",
    "turn off the television", "add eggs to the shopping list", "what time is it", "tell me a joke",
    "lock the front door", "open the garage door", "dim the bedroom lights", "read my new messages",
    "start the vacuum cleaner", "what's on my calendar tomorrow", "wake me up at seven",
    "stop the alarm", "turn the volume down", "skip this song", "how far is the airport",
    "send a message to my brother", "find a recipe for pancakes", "is it going to rain tonight",
    "set the heating to twenty degrees", "pause the movie", "read me the news", "cancel my meeting",
    "order more coffee", "how long will the traffic take", "turn the fan on", "close the blinds",
)
PREAMBLES: tuple[str, ...] = (
    "okay", "so", "um", "well", "excuse me", "hello there", "listen", "alright then", "good morning",
    "I think", "oh and", "wait a second", "by the way", "right",
)
CHATTER: tuple[str, ...] = (
    "I left my keys by the kitchen table", "the meeting starts at nine tomorrow",
    "we should paint the fence this weekend", "my train was late again this morning",
    "can you pass me the salt", "the children are playing outside",
    "let's have pasta for dinner tonight", "I need to charge my phone", "the bus stops outside the library",
    "did you see the game last night", "she bought a new bicycle", "the weather was lovely yesterday",
)
# Phrases that sound like, or share words with, "hey computer".
CONFUSABLES: tuple[str, ...] = (
    "hey commuter", "a computer", "hey compute", "they come pewter", "hey come here", "the computer",
    "my computer", "hey conductor", "hey Peter", "okay computer", "hey cucumber", "they compute",
    "hey commander", "hay computing",
)

_WAKE_SLOT = "{W}"
_TOKEN_RE = re.compile(r"[A-Za-z']+")


class EspeakUnavailable(RuntimeError):
    """libespeak-ng cannot be loaded or initialised."""


# --------------------------------------------------------------------------------------------
# ctypes binding
# --------------------------------------------------------------------------------------------


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Voice(ctypes.Structure):
    """``espeak_VOICE`` from speak_lib.h."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` from speak_lib.h."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds, truncated
        ("sample", ctypes.c_int),  # output sample index of the event: the precise position
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                  ctypes.POINTER(_Event))


@dataclass(frozen=True)
class SynthEvent:
    """One espeak-ng event: ``kind`` is the espeak_EVENT_TYPE, ``sample`` its output sample index."""

    kind: int
    sample: int
    text_position: int  # 1-based character offset in the synthesised (SSML) text
    length: int
    name: str  # phoneme mnemonic for PHONEME events, mark name for MARK events, else ""


@dataclass
class Synthesis:
    """Mono int16 PCM at ``sample_rate`` and the events reported while rendering it."""

    audio: np.ndarray
    sample_rate: int
    events: list[SynthEvent]


def load_library() -> ctypes.CDLL:
    """Load libespeak-ng or raise `EspeakUnavailable` saying how to install it."""
    for name in (LIBRARY_NAME, ctypes.util.find_library("espeak-ng")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    raise EspeakUnavailable(f"{LIBRARY_NAME} not found; install it with: {APT_HINT}")


def espeak_available() -> bool:
    """True when libespeak-ng can be loaded."""
    try:
        load_library()
    except EspeakUnavailable:
        return False
    return True


class _Engine:
    """The process's espeak-ng instance (the library keeps global state: one per process).

    Do not synthesise with it in a long-lived process: use `synthesize`, which forks first.
    """

    def __init__(self) -> None:
        lib = load_library()
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        # Phoneme events use espeak's ASCII mnemonics: with espeakINITIALIZE_PHONEME_IPA, pauses and
        # some real phonemes (the linking glide ";") are both reported as "", so pauses could not
        # be told apart.
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INIT_PHONEME_EVENTS)
        if rate <= 0:
            raise EspeakUnavailable(f"espeak_Initialize failed ({rate}); is espeak-ng-data installed? {APT_HINT}")
        self.lib = lib
        self.sample_rate = int(rate)
        self.version = (lib.espeak_Info(None) or b"?").decode()
        self._chunks: list[np.ndarray] = []
        self._events: list[SynthEvent] = []
        self._callback = _SynthCallback(self._on_audio)  # keep a reference: C holds only a pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, num_samples: int, events: Any) -> int:
        if wav and num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        i = 0
        while events[i].type != 0:  # the list ends with espeakEVENT_LIST_TERMINATED
            self._events.append(_convert_event(events[i]))
            i += 1
        return 0

    def select_voice(self, voice: str) -> str:
        """Select ``voice`` (``language[+variant]``) and return espeak's identifier for it."""
        status = self.lib.espeak_SetVoiceByName(voice.encode())
        current = self.lib.espeak_GetCurrentVoice()
        identifier = (current.contents.identifier or b"").decode() if current else ""
        variant = voice.partition("+")[2]
        # A missing variant falls back silently to the bare voice: treat that as an error too.
        if status != 0 or (variant and not identifier.endswith("+" + variant)):
            raise ValueError(f"espeak-ng has no voice {voice!r} (got {identifier!r}); see `espeak-ng --voices=en`")
        return identifier

    def render(self, ssml: str, voice: str, rate: int, pitch: int, pitch_range: int) -> Synthesis:
        """Synthesise ``ssml`` with ``voice`` (e.g. ``en-gb+f2``) and the given prosody."""
        self._chunks, self._events = [], []
        self.select_voice(voice)
        # Parameters are set after the voice (selecting a voice resets them) and every time, so
        # nothing carries over from the previous utterance.
        for param, value in ((_PARAM_RATE, rate), (_PARAM_PITCH, pitch), (_PARAM_RANGE, pitch_range),
                             (_PARAM_VOLUME, 100)):
            if self.lib.espeak_SetParameter(param, int(value), 0) != 0:
                raise RuntimeError(f"espeak_SetParameter({param}, {value}) failed")
        data = ssml.encode("utf-8") + b"\0"
        status = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _SSML, None, None)
        if status != 0:
            raise RuntimeError(f"espeak_Synth failed with status {status}")
        self.lib.espeak_Synchronize()
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        return Synthesis(audio.astype(np.int16, copy=False), self.sample_rate, list(self._events))


def _convert_event(event: _Event) -> SynthEvent:
    name = ""
    if event.type == EVENT_PHONEME:
        name = event.id.string.decode("utf-8", "replace")
    elif event.type == EVENT_MARK and event.id.name:
        name = event.id.name.decode("utf-8", "replace")
    return SynthEvent(int(event.type), int(event.sample), int(event.text_position), int(event.length), name)


_ENGINE: _Engine | None = None
_ENGINE_USED = False


def _engine() -> _Engine:
    """This process's engine, initialised on first use (never synthesised with in the parent)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def _render_here(ssml: str, voice: str, rate: int, pitch: int, pitch_range: int) -> Synthesis:
    global _ENGINE_USED
    if _ENGINE_USED:
        raise RuntimeError("espeak-ng was already used in this process; its output would depend on history")
    _ENGINE_USED = True
    return _engine().render(ssml, voice, rate, pitch, pitch_range)


def synthesize(ssml: str, voice: str = "en-us", rate: int = 175, pitch: int = 50, pitch_range: int = 50) -> Synthesis:
    """Synthesise SSML text in a forked child, so the result does not depend on earlier calls."""
    _engine()  # initialise once in the parent; children inherit the untouched engine
    # Children return plain objects: dataclasses would need this module importable by name.
    audio, rate_hz, events = run_forked([(ssml, voice, rate, pitch, pitch_range)], _render_plain, workers=1)[0]
    return Synthesis(audio, rate_hz, [SynthEvent(*e) for e in events])


def check_voices(voices: Sequence[str]) -> None:
    """Raise ValueError naming every voice espeak-ng cannot select (checked in forked children)."""
    _engine()
    identifiers = run_forked(list(voices), _voice_or_none, workers=1)
    missing = [voice for voice, found in zip(voices, identifiers) if found is None]
    if missing:
        raise ValueError(f"espeak-ng has no voice(s) {', '.join(missing)}; see `espeak-ng --voices=en`")


def _voice_or_none(voice: str) -> str | None:
    try:
        return _engine().select_voice(voice)
    except ValueError:
        return None


def _render_plain(args: tuple[str, str, int, int, int]) -> tuple[np.ndarray, int, list[tuple[Any, ...]]]:
    synth = _render_here(*args)
    return synth.audio, synth.sample_rate, [astuple(e) for e in synth.events]


# --------------------------------------------------------------------------------------------
# Fork-per-task runner
# --------------------------------------------------------------------------------------------


def run_forked(tasks: Sequence[Any], func: Callable[[Any], Any], workers: int = 1) -> list[Any]:
    """Return ``[func(t) for t in tasks]``, each call in its own forked child, ``workers`` at once.

    Results travel back pickled through a pipe; a failing task raises RuntimeError with the
    child's traceback after the running children have finished.
    """
    results: list[Any] = [None] * len(tasks)
    pending = list(range(len(tasks)))[::-1]
    running: dict[int, tuple[int, int, list[bytes]]] = {}  # read fd -> (task index, pid, chunks)
    selector = selectors.DefaultSelector()
    failure: str | None = None
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        while pending or running:
            while pending and len(running) < max(1, workers) and failure is None:
                index = pending.pop()
                read_fd, pid = _fork_task(func, tasks[index])
                running[read_fd] = (index, pid, [])
                selector.register(read_fd, selectors.EVENT_READ)
            if not running:
                break
            for key, _ in selector.select():
                fd = int(key.fd)
                index, pid, chunks = running[fd]
                data = os.read(fd, 1 << 16)
                if data:
                    chunks.append(data)
                    continue
                selector.unregister(fd)
                os.close(fd)
                del running[fd]
                _, status = os.waitpid(pid, 0)
                status_ok, payload = _decode_child(b"".join(chunks), status)
                if status_ok:
                    results[index] = payload
                elif failure is None:
                    failure = f"task {index} failed:\n{payload}"
    finally:
        for fd, (_, pid, _) in running.items():  # only left on an exception, e.g. Ctrl-C
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
            os.close(fd)
        selector.close()
    if failure is not None:
        raise RuntimeError(failure)
    return results


def _fork_task(func: Callable[[Any], Any], task: Any) -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(read_fd)
        code = 0
        try:
            payload = pickle.dumps((True, func(task)), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:  # report everything, including KeyboardInterrupt, to the parent
            payload = pickle.dumps((False, traceback.format_exc()))
            code = 1
        try:
            with os.fdopen(write_fd, "wb") as pipe:
                pipe.write(payload)
        finally:
            os._exit(code)  # skip the parent's atexit handlers and buffers
    os.close(write_fd)
    return read_fd, pid


def _decode_child(data: bytes, status: int) -> tuple[bool, Any]:
    try:
        return pickle.loads(data)
    except Exception:  # the child died before writing (killed, out of memory)
        return False, f"child exited with status {status} and no result"


# --------------------------------------------------------------------------------------------
# Event timeline -> words and phones
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A span ``[start, end)`` in engine samples; ``token`` is the word index or None (silence)."""

    start: int
    end: int
    label: str
    token: int | None


@dataclass
class EventAlignment:
    """Words and phones (engine samples) derived from one synthesis, plus mark positions."""

    words: list[Segment]
    phones: list[Segment]
    marks: list[tuple[str, int]]  # (name, sample) in the order reported
    end_marks: dict[int, int]  # token -> the end mark that set its end
    num_samples: int


def _is_pause(name: str) -> bool:
    """espeak's pause phonemes: "_", "_:", "_!", "_^_" ..."""
    return name.startswith("_")


def _token_at(text_position: int, spans: Sequence[tuple[int, int]], previous: int | None) -> int | None:
    """Token index of a WORD event at the 1-based ``text_position``, or None to ignore the event.

    The token whose character span holds the position wins. espeak-ng sometimes reports the position
    of a preceding SSML tag instead (a word right after ``<mark/>`` at a sentence start); a
    position in the gap before the token that follows ``previous`` is taken as that token.
    """
    offset = text_position - 1
    for index, (start, end) in enumerate(spans):
        if start <= offset < end:
            return index
    following = 0 if previous is None else previous + 1
    if following < len(spans) and offset < spans[following][0]:
        previous_end = spans[previous][1] if previous is not None else 0
        if offset >= previous_end:
            return following
    return None


def end_mark_name(token: int) -> str:
    """Name of the ``<mark/>`` written right after token ``token``."""
    return f"w{token}"


def align_events(synth: Synthesis, token_spans: Sequence[tuple[int, int]]) -> EventAlignment:
    """Turn espeak events into word and phone segments (engine samples).

    ``token_spans`` are the ``[start, end)`` character spans of the words in the synthesised text;
    each WORD event is attributed to the token containing its text position. A word ends at the
    mark named `end_mark_name` written after it when that mark lies inside the word's last phone
    (before a pause, the pause phoneme's event comes after a stretch of silence; the mark does not),
    else where its last phone ends. Raises ValueError when a token got no WORD event, so a text
    the synthesiser rewrites (digits, abbreviations, merged pairs) cannot slip through mislabelled.
    """
    n = len(synth.audio)
    # (sample, kind, label, token): kind "onset" (word start), "phone" or "pause".
    points: list[tuple[int, str, str, int | None]] = []
    marks: list[tuple[str, int]] = []
    token: int | None = None
    previous: int | None = None
    for event in synth.events:
        sample = min(max(event.sample, 0), n)
        if event.kind == EVENT_WORD:
            token = _token_at(event.text_position, token_spans, previous)
            if token is not None:
                previous = token
                points.append((sample, "onset", "", token))
        elif event.kind == EVENT_PHONEME:
            if _is_pause(event.name):
                points.append((sample, "pause", "", None))
            elif token is not None:
                points.append((sample, "phone", event.name, token))
        elif event.kind == EVENT_END:
            points.append((sample, "pause", "", None))
            token = None
        elif event.kind == EVENT_MARK:
            marks.append((event.name, sample))
    phones = _phone_segments(points, n)
    _check_tokens(phones, len(token_spans))
    end_marks = _trim_to_end_marks(phones, dict(marks))
    words = _word_segments(phones, len(token_spans))
    return EventAlignment(words=words, phones=phones, marks=marks, end_marks=end_marks, num_samples=n)


def _trim_to_end_marks(phones: list[Segment], marks: dict[str, int]) -> dict[int, int]:
    """End each word's last phone at its end mark when the mark is plausible; return the marks used.

    A mark outside ``(last phone start, last phone end]`` is ignored: espeak-ng 1.51 reports marks
    next to an h-dropped "hey" (West Midlands voice) one word late.
    """
    last_phone = {phone.token: i for i, phone in enumerate(phones)}
    used: dict[int, int] = {}
    for token, i in last_phone.items():
        assert token is not None
        mark = marks.get(end_mark_name(token))
        phone = phones[i]
        if mark is not None and phone.start < mark <= phone.end:
            phones[i] = Segment(phone.start, mark, phone.label, phone.token)
            used[token] = mark
    return used


def _phone_segments(points: list[tuple[int, str, str, int | None]], n: int) -> list[Segment]:
    """Each point opens a span that the next point closes; an onset joins the phone after it."""
    phones: list[Segment] = []
    onset_start: int | None = None
    for i, (start, kind, label, token) in enumerate(points):
        end = points[i + 1][0] if i + 1 < len(points) else n
        if kind == "onset":
            onset_start = start  # the stop closure / pre-pause between WORD and first phone
        elif kind == "pause":
            onset_start = None  # pauses right after a WORD event stay silence
        else:
            first = start if onset_start is None else onset_start
            onset_start = None
            if end > first:
                phones.append(Segment(first, end, label, token))
    return phones


def _check_tokens(phones: list[Segment], num_tokens: int) -> None:
    spoken = {phone.token for phone in phones}
    missing = [i for i in range(num_tokens) if i not in spoken]
    if missing:
        raise ValueError(f"espeak-ng reported no word of its own for token(s) {missing} (it merges "
                         "pairs such as 'in the' into one word)")


def _word_segments(phones: list[Segment], num_tokens: int) -> list[Segment]:
    spans: dict[int, list[int]] = {}
    for phone in phones:
        assert phone.token is not None
        span = spans.setdefault(phone.token, [phone.start, phone.end])
        span[0], span[1] = min(span[0], phone.start), max(span[1], phone.end)
    return [Segment(spans[i][0], spans[i][1], "", i) for i in range(num_tokens)]


# --------------------------------------------------------------------------------------------
# Texts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Utterance:
    """A sentence template; ``{W}`` stands for the wake phrase.

    Rendered as SSML with a ``<mark/>`` after every word (see `align_events`).
    """

    template: str  # e.g. "{W}, turn the fan on." ; {W} is the wake phrase

    def render(self, wake_phrase: str) -> tuple[str, list[str], list[tuple[int, int]], list[tuple[int, int]]]:
        """Return (ssml, tokens, token character spans in ssml, wake token ranges [i, j))."""
        ssml_parts: list[str] = []
        tokens: list[str] = []
        spans: list[tuple[int, int]] = []
        wake_ranges: list[tuple[int, int]] = []
        cursor = 0

        def emit(text: str) -> None:
            nonlocal cursor
            ssml_parts.append(text)
            cursor += len(text)

        pieces = self.template.split(_WAKE_SLOT)
        for k, piece in enumerate(pieces):
            if k > 0:
                first = len(tokens)
                sentence_start = re.search(r"(^|[.?!])\s*$", "".join(pieces[:k])) is not None
                for j, word in enumerate(_TOKEN_RE.findall(wake_phrase)):
                    if j:
                        emit(" ")
                    elif sentence_start:
                        # espeak ends a sentence at "." only when a capital letter follows.
                        word = word[:1].upper() + word[1:]
                    spans.append((cursor, cursor + len(word)))
                    emit(word)
                    emit(f'<mark name="{end_mark_name(len(tokens))}"/>')
                    tokens.append(word.lower())
                wake_ranges.append((first, len(tokens)))
            last = 0
            for match in _TOKEN_RE.finditer(piece):
                emit(piece[last:match.start()])
                spans.append((cursor, cursor + len(match.group())))
                emit(match.group())
                emit(f'<mark name="{end_mark_name(len(tokens))}"/>')
                tokens.append(match.group().lower())
                last = match.end()
            emit(piece[last:])
        return "".join(ssml_parts), tokens, spans, wake_ranges


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def positive_template(rng: np.random.Generator) -> str:
    """A carrier sentence with the wake phrase at the start, in the middle, at the end or twice."""
    cmd, pre = _pick(rng, COMMANDS), _pick(rng, PREAMBLES)
    where = rng.choice(["start", "middle", "end", "twice"], p=[0.4, 0.3, 0.15, 0.15])
    if where == "start":
        return f"{_WAKE_SLOT}, {cmd}." if rng.random() < 0.7 else f"{_WAKE_SLOT} {cmd}?"
    if where == "middle":
        return f"{pre.capitalize()} {_WAKE_SLOT}, {cmd}."
    if where == "end":
        return f"{cmd.capitalize()}, {_WAKE_SLOT}." if rng.random() < 0.5 else f"{pre.capitalize()}, {_WAKE_SLOT}."
    return f"{_WAKE_SLOT}, {cmd}. {_WAKE_SLOT}, {_pick(rng, COMMANDS)}."


def negative_template(rng: np.random.Generator, confusables: Sequence[str]) -> str:
    """A sentence without the wake phrase; half of them use a confusable phrase when given."""
    cmd, pre = _pick(rng, COMMANDS), _pick(rng, PREAMBLES)
    if confusables and rng.random() < 0.5:
        conf = _pick(rng, confusables)
        form = int(rng.integers(3))
        if form == 0:
            return f"{conf.capitalize()}, {cmd}."
        if form == 1:
            return f"{pre.capitalize()} {conf}, {cmd}."
        return f"{_pick(rng, CHATTER).capitalize()}, {conf}."
    form = int(rng.integers(3))
    if form == 0:
        return f"{cmd.capitalize()}."
    if form == 1:
        return f"{pre.capitalize()}, {cmd}."
    return f"{_pick(rng, CHATTER).capitalize()}."


def phrase_tokens(text: str) -> list[str]:
    """The lower-case words of ``text`` as they appear on the words tier."""
    return [word.lower() for word in _TOKEN_RE.findall(text)]


def contains_phrase(tokens: Sequence[str], phrase: Sequence[str]) -> bool:
    """True when ``phrase`` occurs as a consecutive token sequence."""
    k = len(phrase)
    return any(list(tokens[i:i + k]) == list(phrase) for i in range(len(tokens) - k + 1))


# --------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------


def coloured_noise(n: int, beta: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f^beta power spectrum (0 white, 1 pink, 2 brown)."""
    if n == 0:
        return np.zeros(0)
    m = scipy.fft.next_fast_len(n, real=True)  # shaping a fast length is ~10x quicker; then cut
    spectrum = scipy.fft.rfft(rng.standard_normal(m))
    freqs = scipy.fft.rfftfreq(m)
    freqs[0] = freqs[1] if m > 1 else 1.0
    noise = scipy.fft.irfft(spectrum * freqs ** (-beta / 2.0), m)[:n]
    noise -= noise.mean()
    return noise / max(float(np.sqrt(np.mean(noise ** 2))), 1e-12)


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] to int16 (rounded, clipped)."""
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def rms_db(x: np.ndarray) -> float:
    """RMS level in dB re full scale (int16 input is scaled to [-1, 1])."""
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return float("nan")
    return 10.0 * math.log10(float(np.mean(x ** 2)) / 32768.0 ** 2 + 1e-12)


def energy_profile(audio: np.ndarray, sample_rate: int, time_s: float, window_s: float = 0.005,
                   before: int = 6, after: int = 6) -> list[float]:
    """RMS dB of consecutive ``window_s`` windows from ``before`` windows before ``time_s`` to ``after`` after."""
    w = max(1, int(round(window_s * sample_rate)))
    centre = int(round(time_s * sample_rate))
    return [rms_db(audio[max(0, centre + k * w):max(0, centre + (k + 1) * w)]) for k in range(-before, after)]


# --------------------------------------------------------------------------------------------
# One utterance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UttSpec:
    """Everything random about one utterance, drawn up front so workers cannot change it."""

    index: int
    utt_id: str
    positive: bool
    template: str
    voice: str
    split: str
    rate_wpm: int
    pitch: int
    pitch_range: int
    leading_silence_s: float
    trailing_silence_s: float
    snr_db: float | None
    noise_beta: float
    peak_dbfs: float
    noise_seed: tuple[int, int]


@dataclass(frozen=True)
class RenderOptions:
    """Corpus-wide settings shared by all utterances."""

    out_dir: str
    wake_phrase: str
    sample_rate: int
    audio_format: str  # "flac" or "wav"


@dataclass
class UttResult:
    """What one utterance contributes to manifest.csv and truth.json."""

    manifest_row: dict[str, str]
    truth: dict[str, Any] = field(default_factory=dict)


def _time(sample: int, engine_rate: int, offset_s: float) -> float:
    """Engine sample index -> seconds in the output file, rounded to 1 µs (far below a sample)."""
    return round(offset_s + sample / engine_rate, 6)


def render_utterance(spec: UttSpec, options: RenderOptions) -> UttResult:
    """Synthesise, align, mix and write one utterance (call in a fresh process: see `run_forked`)."""
    ssml, tokens, spans, wake_ranges = Utterance(spec.template).render(options.wake_phrase)
    synth = _render_here(ssml, spec.voice, spec.rate_wpm, spec.pitch, spec.pitch_range)
    try:
        ali = align_events(synth, spans)
    except ValueError as exc:
        raise ValueError(f"{spec.utt_id} {ssml!r}: {exc}") from None
    audio, lead_s, first_sound_s, speech_db = compose_audio(synth, ali, spec, options.sample_rate)
    duration_s = len(audio) / options.sample_rate

    def t(sample: int) -> float:
        return min(_time(sample, synth.sample_rate, lead_s), duration_s)

    out = Path(options.out_dir)
    audio_rel = f"audio/{spec.utt_id}.{options.audio_format}"
    grid_rel = f"alignments/{spec.utt_id}.TextGrid"
    _write_audio(out / audio_rel, audio, options.sample_rate, options.audio_format)
    words = [(t(w.start), t(w.end), tokens[i]) for i, w in enumerate(ali.words)]
    phones = [(t(p.start), t(p.end), p.label) for p in ali.phones]
    write_textgrid(out / grid_rel, words, phones, duration_s)

    wake = [{"start_s": words[i][0], "end_s": words[j - 1][1], "word_index": i,
             "end_from": "mark" if j - 1 in ali.end_marks else "phone_events"} for i, j in wake_ranges]
    text = " ".join(tokens)
    truth = {
        "positive": spec.positive, "text": text, "speaker": spec.voice, "split": spec.split,
        "duration_s": duration_s, "leading_silence_s": lead_s,
        "speech_onset_s": words[0][0], "speech_offset_s": words[-1][1], "first_sound_s": first_sound_s,
        "wake": wake, "rate_wpm": spec.rate_wpm, "pitch": spec.pitch, "pitch_range": spec.pitch_range,
        "snr_db": spec.snr_db, "noise_beta": spec.noise_beta, "speech_level_dbfs": speech_db,
        "peak_dbfs": spec.peak_dbfs, "ssml": ssml,
    }
    row = {"utt_id": spec.utt_id, "audio_path": audio_rel, "alignment_path": grid_rel,
           "speaker": spec.voice, "text": text, "split": spec.split}
    return UttResult(manifest_row=row, truth=truth)


def compose_audio(synth: Synthesis, ali: EventAlignment, spec: UttSpec,
                  sample_rate: int) -> tuple[np.ndarray, float, float, float]:
    """Resample, pad with silence, add noise, set the level.

    Returns (int16 audio, leading silence s, first non-silent speech sample in s, speech level dB).
    """
    speech = soxr.resample(synth.audio.astype(np.float64) / 32768.0, synth.sample_rate, sample_rate, quality="HQ")
    lead = int(round(spec.leading_silence_s * sample_rate))
    trail = int(round(spec.trailing_silence_s * sample_rate))
    clean = np.concatenate([np.zeros(lead), speech, np.zeros(trail)])
    mix, speech_db = _add_noise(clean, ali, lead, synth.sample_rate, sample_rate, spec)
    audio = to_int16(mix * 10 ** (spec.peak_dbfs / 20.0) / max(float(np.max(np.abs(mix))), 1e-9))
    # -60 dB re the speech peak: espeak's silences are digital zeros, so this is the first sound.
    first_sound = int(np.argmax(np.abs(speech) > 1e-3 * max(float(np.max(np.abs(speech))), 1e-9)))
    return audio, lead / sample_rate, round((lead + first_sound) / sample_rate, 6), speech_db


def _add_noise(clean: np.ndarray, ali: EventAlignment, lead: int, engine_rate: int, sr: int,
               spec: UttSpec) -> tuple[np.ndarray, float]:
    """Mix coloured noise at ``spec.snr_db`` re the speech power inside the words; return (mix, speech dB)."""
    mask = np.zeros(len(clean), dtype=bool)
    for w in ali.words:
        mask[lead + int(w.start * sr / engine_rate):lead + int(math.ceil(w.end * sr / engine_rate))] = True
    speech_power = float(np.mean(clean[mask] ** 2)) if mask.any() else 1e-12
    speech_db = round(10 * math.log10(speech_power + 1e-20), 2)
    if spec.snr_db is None:
        return clean, speech_db
    rng = np.random.default_rng(list(spec.noise_seed))
    noise = coloured_noise(len(clean), spec.noise_beta, rng)
    noise *= math.sqrt(speech_power / 10 ** (spec.snr_db / 10.0))
    return clean + noise, speech_db


def _write_audio(path: Path, audio: np.ndarray, sample_rate: int, audio_format: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), audio, sample_rate, format=audio_format.upper(), subtype="PCM_16")


def write_textgrid(path: Path, words: list[tuple[float, float, str]], phones: list[tuple[float, float, str]],
                   duration_s: float) -> None:
    """Write an MFA-style long TextGrid (tiers ``words``, ``phones``; gaps become empty intervals)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = textgrid.Textgrid()
    for name, entries in (("words", words), ("phones", phones)):
        grid.addTier(textgrid.IntervalTier(name, [e for e in entries if e[1] > e[0]], 0.0, duration_s))
    grid.save(str(path), format="long_textgrid", includeBlankSpaces=True, reportingMode="error")


# --------------------------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------------------------


def assign_splits(voices: Sequence[str]) -> list[tuple[str, str]]:
    """Split a custom voice list by position: the last sixth test, the sixth before it valid."""
    if len(voices) < 3:
        raise ValueError("need at least 3 voices so train, valid and test speakers differ")
    k = max(1, len(voices) // 6)
    return [(v, "train" if i < len(voices) - 2 * k else "valid" if i < len(voices) - k else "test")
            for i, v in enumerate(voices)]


def draw_specs(n_positive: int, n_negative: int, seed: int, voices: Sequence[tuple[str, str]],
               wake_phrase: str, snr_db: tuple[float, float] | None, leading_silence_s: tuple[float, float],
               trailing_silence_s: tuple[float, float], rate_wpm: tuple[int, int],
               confusables: Sequence[str]) -> list[UttSpec]:
    """Draw every utterance's text, voice and parameters from one seeded generator, in order."""
    rng = np.random.default_rng(seed)
    wake_tokens = phrase_tokens(wake_phrase)
    flags = np.array([True] * n_positive + [False] * n_negative)
    rng.shuffle(flags)
    # Voices go round-robin over a shuffled order within positives and within negatives, so each
    # voice (and split) gets a balanced share of both.
    voice_of: dict[int, tuple[str, str]] = {}
    for value in (True, False):
        order = rng.permutation(len(voices))
        for k, index in enumerate(np.flatnonzero(flags == value)):
            voice_of[int(index)] = voices[int(order[k % len(voices)])]
    specs = []
    for index, positive in enumerate(flags):
        template = _draw_template(rng, bool(positive), wake_tokens, confusables)
        voice, split = voice_of[index]
        specs.append(UttSpec(
            index=index, utt_id=f"utt{index:05d}-{'pos' if positive else 'neg'}", positive=bool(positive),
            template=template, voice=voice, split=split,
            rate_wpm=int(rng.integers(rate_wpm[0], rate_wpm[1] + 1)),
            pitch=int(rng.integers(30, 71)), pitch_range=int(rng.integers(30, 81)),
            leading_silence_s=round(float(rng.uniform(*leading_silence_s)), 4),
            trailing_silence_s=round(float(rng.uniform(*trailing_silence_s)), 4),
            snr_db=None if snr_db is None else round(float(rng.uniform(*snr_db)), 2),
            noise_beta=round(float(rng.uniform(0.0, 2.0)), 3),
            peak_dbfs=round(float(rng.uniform(-9.0, -1.0)), 2),
            noise_seed=(int(seed), index),
        ))
    return specs


def _draw_template(rng: np.random.Generator, positive: bool, wake_tokens: list[str],
                   confusables: Sequence[str]) -> str:
    for _ in range(100):
        template = positive_template(rng) if positive else negative_template(rng, confusables)
        if positive:
            return template
        if not contains_phrase(phrase_tokens(template), wake_tokens):
            return template
    raise ValueError("could not draw a negative sentence without the wake phrase")


def make_corpus(out_dir: str | Path, n_positive: int, n_negative: int, seed: int = 0,
                voices: Sequence[str] | Sequence[tuple[str, str]] | None = None,
                wake_phrase: str = DEFAULT_WAKE_PHRASE, sample_rate: int = 16000,
                snr_db: tuple[float, float] | None = (5.0, 20.0),
                leading_silence_s: tuple[float, float] = (0.2, 1.5),
                trailing_silence_s: tuple[float, float] = (0.2, 0.6),
                rate_wpm: tuple[int, int] = (140, 200), confusables: Sequence[str] | None = None,
                audio_format: str = "flac", workers: int = 1, overwrite: bool = False) -> Path:
    """Generate the corpus in ``out_dir``; return the path of its ``manifest.csv``.

    ``voices`` are espeak-ng voice names (``"en-gb+f2"``; splits by position, see `assign_splits`) or
    ``(voice, split)`` pairs; default `DEFAULT_VOICES`. ``snr_db=None`` writes clean speech.
    ``confusables`` default to `CONFUSABLES` for the default wake phrase, else none.
    """
    out = Path(out_dir)
    if audio_format not in ("flac", "wav"):
        raise ValueError("audio_format must be 'flac' or 'wav'")
    voice_table = _voice_table(voices)
    if confusables is None:
        confusables = CONFUSABLES if phrase_tokens(wake_phrase) == phrase_tokens(DEFAULT_WAKE_PHRASE) else ()
    specs = draw_specs(n_positive, n_negative, seed, voice_table, wake_phrase, snr_db, leading_silence_s,
                       trailing_silence_s, rate_wpm, confusables)
    check_voices([voice for voice, _ in voice_table])
    _prepare_out_dir(out, overwrite)
    options = RenderOptions(str(out), wake_phrase, sample_rate, audio_format)
    engine = _engine()  # initialised here, used only in the forked children
    results = run_forked(specs, lambda spec: asdict(render_utterance(spec, options)), workers=workers)
    _write_manifest(out / "manifest.csv", [r["manifest_row"] for r in results])
    truth = {
        "generator": "scripts/espeak_corpus.py", "espeak_ng_version": engine.version, "seed": seed,
        "wake_phrase": " ".join(phrase_tokens(wake_phrase)), "sample_rate": sample_rate, "audio_format": audio_format,
        "time_origin": "seconds from the start of each audio file",
        "utterances": {spec.utt_id: r["truth"] for spec, r in zip(specs, results)},
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n", encoding="utf-8")
    return out / "manifest.csv"


def _voice_table(voices: Sequence[str] | Sequence[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if voices is None:
        return list(DEFAULT_VOICES)
    if all(isinstance(v, str) for v in voices):
        return assign_splits([str(v) for v in voices])
    return [(str(v), str(s)) for v, s in voices]  # type: ignore[misc]


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Create ``out``; with ``overwrite`` remove only what a previous run wrote there."""
    ours = [out / "audio", out / "alignments", out / "manifest.csv", out / "truth.json"]
    existing = [p for p in ours if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds a corpus ({existing[0].name}); pass overwrite=True / --overwrite")
    for path in existing:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    columns = ["utt_id", "audio_path", "alignment_path", "speaker", "text", "split"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(",")
    return float(lo), float(hi or lo)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog=f"Needs the Debian packages: {APT_HINT}")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--positives", type=int, required=True, help="utterances with the wake phrase")
    parser.add_argument("--negatives", type=int, required=True, help="utterances without it")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--wav", action="store_true", help="write WAV instead of FLAC")
    parser.add_argument("--workers", type=int, default=1, help="utterances synthesised in parallel")
    parser.add_argument("--wake-phrase", default=DEFAULT_WAKE_PHRASE)
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--snr-db", type=_range, default=(5.0, 20.0), help="LO,HI (default 5,20)")
    parser.add_argument("--clean", action="store_true", help="no background noise")
    parser.add_argument("--leading-silence", type=_range, default=(0.2, 1.5), help="LO,HI seconds")
    parser.add_argument("--voices", help="comma-separated espeak-ng voices (default: the 12 built-in)")
    parser.add_argument("--overwrite", action="store_true", help="replace a corpus already in OUT_DIR")
    args = parser.parse_args(argv)
    try:
        load_library()
    except EspeakUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    manifest = make_corpus(
        args.out_dir, args.positives, args.negatives, args.seed,
        voices=args.voices.split(",") if args.voices else None, wake_phrase=args.wake_phrase,
        sample_rate=args.sample_rate, snr_db=None if args.clean else args.snr_db,
        leading_silence_s=args.leading_silence, audio_format="wav" if args.wav else "flac",
        workers=args.workers, overwrite=args.overwrite,
    )
    elapsed = time.perf_counter() - started
    total = args.positives + args.negatives
    print(f"wrote {total} utterances to {manifest.parent} in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.1f} utt/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
