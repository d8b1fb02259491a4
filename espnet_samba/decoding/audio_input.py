"""Audio a recogniser can decode, checked before decoding starts: errors that name the file and say what to do.

Without these checks a corrupt file fails inside libsndfile in a data-loader worker, an empty one deep in the STFT,
a multi-channel one in the frontend's shape logic, and a file at another sampling rate decodes without complaint
into nonsense. The checks read only each file's header.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Set, Tuple

import soundfile


class AudioInputError(ValueError):
    """An audio file the recogniser cannot decode; the message names the file, the problem and the fix."""


def check_audio_file(path: Path, sample_rate: Optional[int], key: Optional[str] = None) -> None:
    """Raise `AudioInputError` unless `path` is a readable, non-empty, mono file at `sample_rate` Hz.

    Args:
        path: the audio file.
        sample_rate: the model's sampling rate, or None to accept any.
        key: the utterance id, named in the message when given.
    """
    where = f"{path} (utterance {key})" if key is not None else f"{path}"
    if not Path(path).is_file():
        raise AudioInputError(f"{where}: no such file; correct its path (wav.scp) or remove the utterance")
    try:
        info = soundfile.info(str(path))
    except RuntimeError as error:  # soundfile.LibsndfileError
        raise AudioInputError(
            f"{where}: not a readable audio file ({error}); re-encode it (e.g. sox in.flac out.wav) or remove the "
            "utterance"
        ) from error
    if info.frames == 0:
        raise AudioInputError(
            f"{where}: holds no samples; remove the utterance from the data directory (wav.scp, text, utt2spk) or "
            "replace the file"
        )
    if info.channels != 1:
        raise AudioInputError(
            f"{where}: has {info.channels} channels; the model takes mono audio: mix it down or keep one channel "
            f"(sox in.wav out.wav remix -, or remix 1)"
        )
    if sample_rate is not None and info.samplerate != sample_rate:
        raise AudioInputError(
            f"{where}: is sampled at {info.samplerate} Hz but the model expects {sample_rate} Hz; resample it "
            f"(sox in.wav -r {sample_rate} out.wav, or asr.sh --fs {sample_rate // 1000}k in stage 3)"
        )


def read_scp(scp: Path, keys: Optional[Set[str]] = None) -> Iterable[Tuple[str, str]]:
    """(key, path) of each line of a wav.scp, only those of `keys` when given."""
    with open(scp, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                key, path = line.rstrip("\n").split(maxsplit=1)
                if keys is None or key in keys:
                    yield key, path


def check_sound_scp(scp: Path, sample_rate: Optional[int], key_file: Optional[Path] = None) -> None:
    """`check_audio_file` for every utterance of a wav.scp (those listed in `key_file`'s first column if given)."""
    keys = None
    if key_file is not None:
        with open(key_file, encoding="utf-8") as lines:
            keys = {line.split()[0] for line in lines if line.strip()}
    for key, path in read_scp(scp, keys):
        check_audio_file(Path(path), sample_rate, key)
