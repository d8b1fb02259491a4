#!/usr/bin/env python3
"""Build the train/dev/test Kaldi data directories from a local copy of the GigaSpeech release.

The release holds ``GigaSpeech.json`` (metadata) beside ``audio/`` (long recordings as 16 kHz Opus). The
metadata lists ``audios``; each has ``aid``, ``path`` (relative to the JSON file) and ``segments``; each segment
has ``sid``, ``begin_time``, ``end_time``, ``text_tn`` and ``subsets`` such as ``["{XL}", "{L}"]``. The
training set is the segments tagged with the chosen subset, dev is ``{DEV}``, test is ``{TEST}``.

Transcripts follow the official toolkit's Kaldi preparation (SpeechColab/GigaSpeech,
``toolkits/kaldi/gigaspeech_data_prep.sh``): segments containing a garbage tag (``<SIL> <MUSIC> <NOISE>
<OTHER>``) are dropped, punctuation tags (``<COMMA> <PERIOD> <QUESTIONMARK> <EXCLAMATIONPOINT>``) are removed
and spaces are squeezed. The speaker of each segment is the segment itself, as in the official toolkit.
``wav.scp`` names the Opus files, which ESPnet's ``format_wav_scp.py`` reads through soundfile (libsndfile >= 1.0.29
decodes Ogg/Opus); ``segments`` cuts the utterances out of them.

Usage: prepare_gigaspeech.py --train_subset XL /path/to/GigaSpeech data
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Tuple

from kaldi_data_dir import CorpusError, Utterance, write_data_dir

TRAIN_SUBSETS = ("XS", "S", "M", "L", "XL")
GARBAGE_TAGS = ("<SIL>", "<MUSIC>", "<NOISE>", "<OTHER>")
PUNCTUATION_TAGS = ("<COMMA>", "<PERIOD>", "<QUESTIONMARK>", "<EXCLAMATIONPOINT>")
METADATA = "GigaSpeech.json"


def training_text(text_tn: str) -> str:
    """The transcript used for training and reference: punctuation tags removed, spaces squeezed.

    Args:
        text_tn: the segment's ``text_tn`` field, e.g. ``"AS THEY'RE LEAVING <COMMA> CAN KASH"``.

    Returns:
        The cleaned transcript, or ``""`` when the segment is a garbage utterance (contains a garbage tag).
    """
    words = text_tn.split()
    if any(word in GARBAGE_TAGS for word in words):
        return ""
    return " ".join(word for word in words if word not in PUNCTUATION_TAGS)


def load_metadata(corpus_dir: Path) -> List[Dict[str, Any]]:
    """Parse ``GigaSpeech.json`` and return its ``audios`` list."""
    path = corpus_dir / METADATA
    if not path.is_file():
        raise CorpusError(
            f"{path} not found: set GIGASPEECH in db.sh to the directory holding {METADATA} and audio/ "
            "(see https://github.com/SpeechColab/GigaSpeech#download)"
        )
    try:
        with path.open(encoding="utf-8") as stream:
            metadata = json.load(stream)
    except json.JSONDecodeError as error:
        raise CorpusError(
            f"{path}:{error.lineno}:{error.colno}: not valid JSON ({error.msg}); the file is truncated or "
            "damaged, download it again"
        ) from None
    audios = metadata.get("audios") if isinstance(metadata, dict) else None
    if not isinstance(audios, list):
        raise CorpusError(f"{path}: expected a top-level object with an 'audios' list")
    return audios


def _field(record: Dict[str, Any], key: str, kind: type, where: str) -> Any:
    if not isinstance(record, dict) or key not in record:
        raise CorpusError(f"{where}: missing field '{key}'")
    value = record[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind):
        raise CorpusError(f"{where}: field '{key}' should be a {kind.__name__}, got {value!r}")
    return value


def _segment_time(segment: Dict[str, Any], where: str) -> Tuple[float, float]:
    begin = _field(segment, "begin_time", float, where)
    end = _field(segment, "end_time", float, where)
    if not 0.0 <= begin < end:
        raise CorpusError(f"{where}: begin_time {begin} and end_time {end} do not form a segment")
    return begin, end


def select_segments(
    corpus_dir: Path, audios: List[Dict[str, Any]], subset_tags: Dict[str, str]
) -> Tuple[Dict[str, List[Utterance]], Dict[str, str], Dict[str, int]]:
    """Sort the segments into the requested sets.

    Args:
        corpus_dir: directory of ``GigaSpeech.json`` (audio paths are relative to it).
        audios: the metadata's ``audios`` list.
        subset_tags: set name -> subset tag, e.g. ``{"train": "{XL}", "dev": "{DEV}"}``.

    Returns:
        The utterances of each set, ``wav.scp`` entries (aid -> audio path) and the number of garbage
        segments dropped from each set.
    """
    sets: Dict[str, List[Utterance]] = {name: [] for name in subset_tags}
    dropped = {name: 0 for name in subset_tags}
    recordings: Dict[str, str] = {}
    metadata = corpus_dir / METADATA
    for index, audio in enumerate(audios):
        where = f"{metadata}: audios[{index}]"
        aid = _field(audio, "aid", str, where)
        where = f"{metadata}: audio {aid}"
        segments = _field(audio, "segments", list, where)
        for segment in segments:
            sid = _field(segment, "sid", str, f"{where}, a segment")
            seg_where = f"{where}, segment {sid}"
            tags = _field(segment, "subsets", list, seg_where)
            wanted = [name for name, tag in subset_tags.items() if tag in tags]
            if not wanted:
                continue
            begin, end = _segment_time(segment, seg_where)
            text_tn = _field(segment, "text_tn", str, seg_where)
            if not text_tn.strip():
                raise CorpusError(f"{seg_where}: empty text_tn; the metadata is damaged, download it again")
            text = training_text(text_tn)
            for name in wanted:
                if text:
                    sets[name].append(Utterance(sid, sid, text, aid, begin, end))
                else:
                    dropped[name] += 1
            if text and aid not in recordings:
                recordings[aid] = _audio_path(corpus_dir, audio, where)
    return sets, recordings, dropped


def _audio_path(corpus_dir: Path, audio: Dict[str, Any], where: str) -> str:
    path = corpus_dir / _field(audio, "path", str, where)
    if not path.is_file():
        raise CorpusError(
            f"{where}: audio file {path} is missing; download the GigaSpeech audio (all of audio/) "
            "or choose a --train_subset whose audio you have"
        )
    rate = audio.get("sample_rate", 16000)
    if rate not in (16000, "16k"):
        raise CorpusError(f"{where}: sample_rate {rate!r}, but GigaSpeech audio is 16 kHz; is this the release?")
    return str(path.resolve())


def prepare(corpus_dir: Path, output_dir: Path, train_subset: str) -> Dict[str, Tuple[int, int]]:
    """Write ``output_dir/{train,dev,test}``; return (kept, dropped) segment counts per set."""
    tags = {"train": f"{{{train_subset}}}", "dev": "{DEV}", "test": "{TEST}"}
    sets, recordings, dropped = select_segments(corpus_dir, load_metadata(corpus_dir), tags)
    counts = {}
    for name, utterances in sets.items():
        if not utterances:
            raise CorpusError(
                f"{corpus_dir / METADATA} has no usable segment tagged {tags[name]}: is it the full release?"
            )
        write_data_dir(output_dir / name, utterances, recordings)
        counts[name] = (len(utterances), dropped[name])
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train_subset", choices=TRAIN_SUBSETS, default="XL", help="GigaSpeech training subset")
    parser.add_argument("corpus_dir", type=Path, help="directory holding GigaSpeech.json and audio/")
    parser.add_argument("output_dir", type=Path, help="where to write train/, dev/ and test/")
    args = parser.parse_args()
    try:
        counts = prepare(args.corpus_dir, args.output_dir, args.train_subset)
    except CorpusError as error:
        sys.exit(f"prepare_gigaspeech.py: error: {error}")
    for name, (kept, dropped) in counts.items():
        print(f"prepare_gigaspeech.py: {args.output_dir / name}: {kept} segments, {dropped} garbage segments dropped")


if __name__ == "__main__":
    main()
