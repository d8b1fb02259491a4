"""Reading and writing Kaldi-style data directories (data/<set>/{wav.scp,text,utt2spk,...}).

Every file is a table: one "<key> <value>" line per entry, sorted by key in byte order (LC_ALL=C), keys unique.
Keys are utterance ids, except in the recording-level files (wav.scp when a "segments" file exists,
reco2file_and_channel, reco2dur) and the speaker-level files (spk2utt, spk2gender).
Standard library only, so the data-directory tools run with any python3.
"""
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple

# Utterance-keyed tables that the tools keep consistent ("wav.scp" is utterance-keyed only without "segments").
UTTERANCE_FILES = (
    "utt2spk",
    "text",
    "segments",
    "feats.scp",
    "feats_shape",
    "utt2dur",
    "utt2num_samples",
    "utt2num_frames",
    "utt2lang",
    "utt2category",
    "utt2uniq",
)
RECORDING_FILES = ("reco2file_and_channel", "reco2dur")
SPEAKER_FILES = ("spk2gender",)
# Files copied as they are (not tables).
PLAIN_FILES = ("feats_type", "feats_dim", "frame_shift")

Entry = Tuple[str, str]


class TableError(ValueError):
    """A malformed table line, with the file and line number in the message."""


def read_table(path: Path) -> List[Entry]:
    """Read a table as (key, value) pairs in file order; the value is the rest of the line ("" if none).

    Raises:
        TableError: a line has leading whitespace, so its key would be empty.
    """
    entries: List[Entry] = []
    with Path(path).open(encoding="utf-8") as table:
        for number, line in enumerate(table, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            if line[0].isspace():
                raise TableError(f"{path}:{number}: line starts with whitespace (empty key): {line!r}")
            key, _, value = line.partition(" ")
            entries.append((key, value.strip()))
    return entries


def write_table(path: Path, entries: Iterable[Entry]) -> None:
    """Write (key, value) pairs as "<key> <value>" lines ("<key>" alone when the value is empty)."""
    with Path(path).open("w", encoding="utf-8") as table:
        for key, value in entries:
            table.write(f"{key} {value}\n" if value else f"{key}\n")


def sort_key(key: str) -> bytes:
    """The LC_ALL=C order that Kaldi tools (sort, join) use: bytes of the UTF-8 encoding."""
    return key.encode("utf-8")


def wav_is_recording_keyed(data_dir: Path) -> bool:
    return (Path(data_dir) / "segments").exists()


def utterance_tables(data_dir: Path, extra_files: Iterable[str] = ()) -> List[str]:
    """Names of the utterance-keyed tables present in data_dir (wav.scp included when it is utterance-keyed)."""
    data_dir = Path(data_dir)
    names = [name for name in (*UTTERANCE_FILES, *extra_files) if (data_dir / name).exists()]
    if (data_dir / "wav.scp").exists() and not wav_is_recording_keyed(data_dir):
        names.append("wav.scp")
    return names


def spk2utt_from_utt2spk(utt2spk: List[Entry]) -> List[Entry]:
    """Group utterances by speaker: [(spk, "utt1 utt2 ...")], speakers sorted, utterances in input order."""
    speakers: Dict[str, List[str]] = {}
    for utterance, speaker in utt2spk:
        speakers.setdefault(speaker, []).append(utterance)
    return [(speaker, " ".join(speakers[speaker])) for speaker in sorted(speakers, key=sort_key)]


def first_unsorted(entries: List[Entry]) -> Optional[int]:
    """Index of the first entry whose key is not strictly greater than the previous one (unsorted or duplicate)."""
    for index in range(1, len(entries)):
        if sort_key(entries[index][0]) <= sort_key(entries[index - 1][0]):
            return index
    return None
