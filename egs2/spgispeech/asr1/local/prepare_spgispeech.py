#!/usr/bin/env python3
"""Build the SPGISpeech Kaldi data directories, with normalised and unnormalised transcripts.

The release holds ``train.csv`` and ``val.csv`` (pipe-separated, header ``wav_filename|wav_filesize|transcript``)
beside ``train/`` and ``val/``, where ``<call>/<n>.wav`` are 16 kHz WAV slices of earnings calls. As in ESPnet's
SPGISpeech recipe the utterance id is ``<call>-<n>``, every utterance is its own speaker, the first
``--dev_size`` utterances of train (in id order) form ``dev_4k`` and the rest ``train_nodev``, and each set
comes twice: ``<set>_unnorm`` keeps the fully formatted transcript, ``<set>`` is normalised (ASCII punctuation
removed, lower case; see ``spgispeech_normalize.py``).

Usage: prepare_spgispeech.py [--dev_size 4000] /path/to/spgispeech data
"""

import argparse
import sys
from pathlib import Path
from typing import Dict, List

from kaldi_data_dir import CorpusError, Utterance, write_data_dir
from spgispeech_normalize import normalize

HEADER = ["wav_filename", "wav_filesize", "transcript"]


def read_manifest(corpus_dir: Path, part: str) -> List[Utterance]:
    """Read ``<part>.csv`` and check every row against its audio file.

    Args:
        corpus_dir: directory holding ``<part>.csv`` and ``<part>/``.
        part: ``train`` or ``val``.

    Returns:
        Utterances with the unnormalised transcript; ``recording`` is the absolute WAV path.
    """
    manifest = corpus_dir / f"{part}.csv"
    if not manifest.is_file():
        raise CorpusError(f"{manifest} not found: set SPGISPEECH in db.sh to the directory holding {part}.csv")
    utterances = []
    with manifest.open(encoding="utf-8") as lines:
        header = next(lines, "").rstrip("\r\n").split("|")
        if header != HEADER:
            raise CorpusError(f"{manifest}:1: header should be '{'|'.join(HEADER)}', found '{'|'.join(header)}'")
        for line_number, line in enumerate(lines, start=2):
            where = f"{manifest}:{line_number}"
            if not line.strip():
                continue
            fields = line.rstrip("\r\n").split("|", maxsplit=2)
            if len(fields) != 3:
                raise CorpusError(f"{where}: expected 3 '|'-separated fields ({'|'.join(HEADER)}), got {len(fields)}")
            wav_filename, wav_filesize, transcript = fields
            transcript = " ".join(transcript.split())
            if not transcript:
                raise CorpusError(f"{where}: {wav_filename} has an empty transcript; fix or remove the line")
            call, _, name = wav_filename.partition("/")
            if not call or not name.endswith(".wav") or "/" in name:
                raise CorpusError(f"{where}: wav_filename {wav_filename!r} is not '<call>/<n>.wav'")
            if not wav_filesize.isdigit():
                raise CorpusError(f"{where}: wav_filesize {wav_filesize!r} is not a number of bytes")
            audio = corpus_dir / part / wav_filename
            if not audio.is_file():
                raise CorpusError(f"{where}: audio {audio} is missing; unpack {part}/ of SPGISpeech completely")
            if audio.stat().st_size != int(wav_filesize):
                raise CorpusError(
                    f"{where}: {audio} has {audio.stat().st_size} bytes, the manifest says {wav_filesize}: "
                    "the file is truncated, unpack it again"
                )
            utt_id = f"{call}-{name[: -len('.wav')]}"
            utterances.append(Utterance(utt_id, utt_id, transcript, str(audio.resolve())))
    if not utterances:
        raise CorpusError(f"{manifest} lists no utterances")
    return utterances


def write_both(output_dir: Path, name: str, utterances: List[Utterance]) -> int:
    """Write ``<name>_unnorm`` and the normalised ``<name>``; return how many lost all words to normalisation.

    Args:
        output_dir: parent of the data directories.
        name: set name, e.g. ``dev_4k``.
        utterances: utterances whose ``recording`` is the audio path.
    """
    recordings: Dict[str, str] = {utt.utt_id: utt.recording for utt in utterances}
    keyed = [Utterance(utt.utt_id, utt.speaker, utt.text, utt.utt_id) for utt in utterances]
    write_data_dir(output_dir / f"{name}_unnorm", keyed, recordings)
    normalized = [Utterance(utt.utt_id, utt.speaker, normalize(utt.text), utt.utt_id) for utt in utterances]
    kept = [utt for utt in normalized if utt.text]
    write_data_dir(output_dir / name, kept, recordings)
    return len(normalized) - len(kept)


def prepare(corpus_dir: Path, output_dir: Path, dev_size: int) -> Dict[str, int]:
    """Write train_nodev, dev_4k and val (each also ``_unnorm``); return the utterance count of each set."""
    train = sorted(read_manifest(corpus_dir, "train"), key=lambda utt: utt.utt_id.encode("utf-8"))
    if len(train) <= dev_size:
        raise CorpusError(f"train.csv has {len(train)} utterances, not more than --dev_size {dev_size}")
    dev_name = f"dev_{dev_size // 1000}k" if dev_size % 1000 == 0 else f"dev_{dev_size}"
    sets = {"train_nodev": train[dev_size:], dev_name: train[:dev_size], "val": read_manifest(corpus_dir, "val")}
    counts = {}
    for name, utterances in sets.items():
        emptied = write_both(output_dir, name, utterances)
        counts[name] = len(utterances)
        if emptied:
            print(f"prepare_spgispeech.py: {emptied} utterances of {name} have no words once normalised; "
                  f"they are only in {name}_unnorm")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev_size", type=int, default=4000, help="utterances of train held out as dev")
    parser.add_argument("corpus_dir", type=Path, help="directory holding train.csv, val.csv, train/ and val/")
    parser.add_argument("output_dir", type=Path, help="parent of the data directories to write")
    args = parser.parse_args()
    try:
        counts = prepare(args.corpus_dir, args.output_dir, args.dev_size)
    except CorpusError as error:
        sys.exit(f"prepare_spgispeech.py: error: {error}")
    for name, count in counts.items():
        print(f"prepare_spgispeech.py: {args.output_dir / name}(_unnorm): {count} utterances")


if __name__ == "__main__":
    main()
