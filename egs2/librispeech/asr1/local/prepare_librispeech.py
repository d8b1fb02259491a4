#!/usr/bin/env python3
"""Build a Kaldi data directory from one or more parts of the official LibriSpeech tree.

The official layout is ``<part>/<reader>/<chapter>/<reader>-<chapter>-<nnnn>.flac`` with one transcript per
chapter, ``<part>/<reader>/<chapter>/<reader>-<chapter>.trans.txt``, whose lines read ``<utt-id> <TEXT>``.
As in Kaldi's and ESPnet's LibriSpeech recipes the speaker is ``<reader>-<chapter>``. ``wav.scp`` lists the
FLAC files themselves (ESPnet's ``format_wav_scp.py`` reads FLAC through soundfile, so no ``flac`` binary
is needed). Several parts given together are merged into one directory (``dev`` = dev-clean + dev-other).

Usage: prepare_librispeech.py --output_dir data/dev LibriSpeech/dev-clean LibriSpeech/dev-other
"""

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from kaldi_data_dir import CorpusError, Utterance, write_data_dir

TRANSCRIPT_SUFFIX = ".trans.txt"


Recordings = Dict[str, str]


def read_chapter(chapter_dir: Path, reader: str, chapter: str) -> Tuple[List[Utterance], Recordings]:
    """Read one chapter's transcript and check it against the chapter's FLAC files.

    Returns the utterances and their ``wav.scp`` entries (utterance id -> absolute FLAC path).

    Args:
        chapter_dir: ``<part>/<reader>/<chapter>``.
        reader: reader id (the grandparent directory name).
        chapter: chapter id (the directory name).
    """
    speaker = f"{reader}-{chapter}"
    transcript = chapter_dir / f"{speaker}{TRANSCRIPT_SUFFIX}"
    if not transcript.is_file():
        raise CorpusError(
            f"{transcript} is missing: every chapter directory needs its transcript; "
            "re-extract this part of LibriSpeech"
        )
    flacs = {path.stem: path for path in chapter_dir.glob("*.flac")}
    utterances = []
    recordings: Recordings = {}
    with transcript.open(encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            where = f"{transcript}:{line_number}"
            fields = line.split(maxsplit=1)
            if not fields:
                raise CorpusError(f"{where}: empty line; each line must read '<utt-id> <TRANSCRIPT>'")
            utt_id = fields[0]
            text = " ".join(fields[1].split()) if len(fields) == 2 else ""
            if not text:
                raise CorpusError(f"{where}: utterance {utt_id} has an empty transcript; fix or remove the line")
            if not utt_id.startswith(f"{speaker}-"):
                raise CorpusError(f"{where}: utterance id {utt_id} does not start with '{speaker}-'")
            if utt_id not in flacs:
                raise CorpusError(
                    f"{where}: audio {chapter_dir / (utt_id + '.flac')} is missing; re-extract this part"
                )
            recordings[utt_id] = str(flacs.pop(utt_id).resolve())
            utterances.append(Utterance(utt_id=utt_id, speaker=speaker, text=text, recording=utt_id))
    if flacs:
        orphan = sorted(flacs)[0]
        raise CorpusError(
            f"{flacs[orphan]} has no line in {transcript} ({len(flacs)} such files): "
            "the transcript is truncated; re-extract this part"
        )
    return utterances, recordings


def read_part(part_dir: Path) -> Tuple[List[Utterance], Recordings]:
    """Read every chapter of one LibriSpeech part (e.g. ``LibriSpeech/dev-clean``).

    Args:
        part_dir: the part directory.
    """
    if not part_dir.is_dir():
        raise CorpusError(f"{part_dir} does not exist: download it (local/data.sh stage 1) or fix LIBRISPEECH")
    chapters = sorted(path for path in part_dir.glob("*/*") if path.is_dir())
    if not chapters:
        raise CorpusError(f"no <reader>/<chapter> directories under {part_dir}: is this a LibriSpeech part?")
    utterances: List[Utterance] = []
    recordings: Recordings = {}
    for chapter_dir in chapters:
        reader, chapter = chapter_dir.parent.name, chapter_dir.name
        chapter_utterances, chapter_recordings = read_chapter(chapter_dir, reader, chapter)
        utterances.extend(chapter_utterances)
        recordings.update(chapter_recordings)
    return utterances, recordings


def prepare(part_dirs: List[Path], output_dir: Path) -> int:
    """Write the merged data directory; return the number of utterances."""
    utterances: List[Utterance] = []
    recordings: Recordings = {}
    for part_dir in part_dirs:
        part_utterances, part_recordings = read_part(part_dir)
        utterances.extend(part_utterances)
        recordings.update(part_recordings)
    return len(write_data_dir(output_dir, utterances, recordings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", type=Path, required=True, help="Kaldi data directory to write")
    parser.add_argument("parts", type=Path, nargs="+", help="LibriSpeech part directories")
    args = parser.parse_args()
    try:
        count = prepare(args.parts, args.output_dir)
    except CorpusError as error:
        sys.exit(f"prepare_librispeech.py: error: {error}")
    print(f"prepare_librispeech.py: wrote {count} utterances to {args.output_dir}")


if __name__ == "__main__":
    main()
