"""Write a Kaldi-style data directory (wav.scp, text, utt2spk, spk2utt, segments).

Shared by the corpus recipes' data-preparation scripts (the other recipes symlink this file into their
``local/``). Every file is sorted by its first column in byte order, as ``utils/validate_data_dir.sh`` and
ESPnet's ``asr.sh`` expect (``LC_ALL=C sort``).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple


class CorpusError(ValueError):
    """A corpus file is malformed or incomplete; the message says where and how to fix it."""


@dataclass(frozen=True)
class Utterance:
    """One utterance of a Kaldi data directory.

    Args:
        utt_id: utterance id; must start with ``speaker`` so that sorting by utterance also sorts by speaker.
        speaker: speaker id.
        text: transcript (one line, words separated by single spaces).
        recording: key into ``wav.scp`` (the utterance itself when there is no ``segments`` file).
        start: segment start in seconds (None when the utterance is a whole recording).
        end: segment end in seconds.
    """

    utt_id: str
    speaker: str
    text: str
    recording: str
    start: Optional[float] = None
    end: Optional[float] = None


def _check_id(kind: str, value: str) -> None:
    if not value or any(ch.isspace() for ch in value):
        raise CorpusError(f"{kind} {value!r} is empty or contains whitespace; Kaldi ids must be single tokens")


def write_data_dir(
    output_dir: Path, utterances: Iterable[Utterance], recordings: Dict[str, str]
) -> List[Utterance]:
    """Write ``utterances`` as a Kaldi data directory; return them sorted by id.

    Args:
        output_dir: directory to (re)create the files in.
        utterances: the utterances; segmented ones (``start`` set) produce a ``segments`` file.
        recordings: ``wav.scp`` entries, recording id -> path or command ending in ``|``; only the
            recordings some utterance uses are written.
    """
    ordered = sorted(utterances, key=lambda u: u.utt_id.encode("utf-8"))
    if not ordered:
        raise CorpusError(f"no utterances to write to {output_dir}: check the corpus path and subset options")
    seen = set()
    for utt in ordered:
        _check_id("utterance id", utt.utt_id)
        _check_id("speaker id", utt.speaker)
        if utt.utt_id in seen:
            raise CorpusError(f"utterance id {utt.utt_id} occurs twice: the corpus manifests overlap")
        seen.add(utt.utt_id)
        if not utt.utt_id.startswith(utt.speaker):
            raise CorpusError(f"utterance id {utt.utt_id} does not start with its speaker id {utt.speaker}")
        if utt.recording not in recordings:
            raise CorpusError(f"utterance {utt.utt_id} refers to unknown recording {utt.recording}")
    segmented = {utt.start is not None for utt in ordered}
    if len(segmented) != 1:
        raise CorpusError(f"{output_dir}: either every utterance or none must have segment times")

    output_dir.mkdir(parents=True, exist_ok=True)
    used_recordings = sorted({utt.recording for utt in ordered}, key=lambda r: r.encode("utf-8"))
    _write_lines(output_dir / "wav.scp", ((rec, recordings[rec]) for rec in used_recordings))
    _write_lines(output_dir / "text", ((utt.utt_id, utt.text) for utt in ordered))
    _write_lines(output_dir / "utt2spk", ((utt.utt_id, utt.speaker) for utt in ordered))
    _write_lines(output_dir / "spk2utt", _spk2utt(ordered))
    segments_file = output_dir / "segments"
    if segmented == {True}:
        _write_lines(
            segments_file,
            ((utt.utt_id, f"{utt.recording} {utt.start:.3f} {utt.end:.3f}") for utt in ordered),
        )
    elif segments_file.exists():
        segments_file.unlink()
    return ordered


def _spk2utt(ordered: List[Utterance]) -> List[Tuple[str, str]]:
    by_speaker: Dict[str, List[str]] = {}
    for utt in ordered:
        by_speaker.setdefault(utt.speaker, []).append(utt.utt_id)
    return [(spk, " ".join(by_speaker[spk])) for spk in sorted(by_speaker, key=lambda s: s.encode("utf-8"))]


def _write_lines(path: Path, rows: Iterable[Tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for key, value in rows:
            out.write(f"{key} {value}\n")
