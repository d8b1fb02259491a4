"""Write Kaldi data directories: ``wav.scp``, ``text``, ``utt2spk`` and ``spk2utt``, sorted as Kaldi requires."""
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterable, List, NamedTuple


class DataEntry(NamedTuple):
    """One utterance of a data dir."""

    utt_id: str
    speaker: str
    wav_path: Path
    transcript: str


def write_data_dir(data_dir: Path, entries: Iterable[DataEntry]) -> None:
    """Write a data dir, every file sorted by its first column in C-locale byte order.

    Args:
        data_dir: Output directory, created if needed.
        entries: The utterances. Each speaker id must be a prefix of its utterance ids, so that sorting
            by utterance and by speaker agree (Kaldi's ``validate_data_dir.sh`` checks this).
    """
    entries = sorted(entries)
    spk2utt: Dict[str, List[str]] = defaultdict(list)
    for entry in entries:
        if not entry.utt_id.startswith(entry.speaker):
            raise ValueError(f"speaker id '{entry.speaker}' is not a prefix of utterance id '{entry.utt_id}'")
        spk2utt[entry.speaker].append(entry.utt_id)
    data_dir.mkdir(parents=True, exist_ok=True)
    _write_lines(data_dir / "wav.scp", (f"{e.utt_id} {e.wav_path}" for e in entries))
    _write_lines(data_dir / "text", (f"{e.utt_id} {e.transcript}" for e in entries))
    _write_lines(data_dir / "utt2spk", (f"{e.utt_id} {e.speaker}" for e in entries))
    _write_lines(data_dir / "spk2utt", (f"{spk} {' '.join(utts)}" for spk, utts in sorted(spk2utt.items())))


def read_table(path: Path) -> Dict[str, str]:
    """Read a Kaldi two-column table (``key value...``) into a dict."""
    table = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition(" ")
            table[key] = value
    return table


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
