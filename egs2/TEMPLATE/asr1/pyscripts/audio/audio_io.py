"""Reading the audio that a Kaldi-style wav.scp entry describes, with errors that name the entry.

A wav.scp value is either a file path (any format libsndfile reads: wav, flac, ogg/opus...) or a shell pipeline
ending in "|" whose stdout is a wav stream (e.g. "sox in.flac -t wav - speed 0.9 |").
"""
import io
import subprocess
from typing import Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import soundfile

Segment = Tuple[str, str, float, float]  # (utterance id, recording id, start s, end s)


class AudioReadError(RuntimeError):
    """The audio of one wav.scp entry could not be read (missing file, corrupt data, failing pipe)."""


def read_wav_entry(key: str, value: str) -> Tuple[np.ndarray, int]:
    """Read the audio of one wav.scp entry.

    Args:
        key: the entry's id (used in error messages).
        value: a file path or a pipeline ending in "|".

    Returns:
        (samples, rate): samples of shape (T,) for mono or (T, C), int16 for 16-bit PCM input, float64 otherwise.

    Raises:
        AudioReadError: the file is missing or unreadable, or the pipeline fails or yields no audio.
    """
    try:
        if value.endswith("|"):
            result = subprocess.run(value[:-1], shell=True, capture_output=True)
            if result.returncode != 0:
                stderr = result.stderr.decode(errors="replace").strip().splitlines()
                raise AudioReadError(
                    f"{key}: command '{value}' failed with status {result.returncode}: {stderr[-1] if stderr else ''}"
                )
            source = io.BytesIO(result.stdout)
        else:
            source = value
        info = soundfile.info(source)
        if hasattr(source, "seek"):
            source.seek(0)
        dtype = "int16" if info.subtype == "PCM_16" else "float64"
        samples, rate = soundfile.read(source, dtype=dtype)
    except AudioReadError:
        raise
    except (OSError, RuntimeError, soundfile.LibsndfileError) as error:
        raise AudioReadError(f"{key}: cannot read audio '{value}': {error}") from error
    if len(samples) == 0:
        raise AudioReadError(f"{key}: audio '{value}' has no samples")
    return samples, rate


def iterate_utterances(
    wav_scp: List[Tuple[str, str]], segments: Optional[List[Segment]]
) -> Iterator[Tuple[str, Optional[np.ndarray], int, Optional[str]]]:
    """Yield (utterance id, samples or None, rate, error message or None) for each utterance.

    Without segments each wav.scp entry is an utterance. With segments each recording is read once and cut
    into its segments; a segment outside the recording is an error for that segment only.
    """
    if segments is None:
        for key, value in wav_scp:
            try:
                samples, rate = read_wav_entry(key, value)
                yield key, samples, rate, None
            except AudioReadError as error:
                yield key, None, 0, str(error)
        return
    recordings: Dict[str, str] = dict(wav_scp)
    for recording, group in group_by_recording(segments):
        try:
            if recording not in recordings:
                raise AudioReadError(f"recording {recording} is not in wav.scp")
            samples, rate = read_wav_entry(recording, recordings[recording])
        except AudioReadError as error:
            for utterance, *_ in group:
                yield utterance, None, 0, str(error)
            continue
        for utterance, _, start, end in group:
            first, last = int(round(start * rate)), int(round(end * rate))
            if last > len(samples) + int(0.01 * rate) or first >= min(last, len(samples)):
                yield utterance, None, 0, (
                    f"{utterance}: segment {start}-{end}s is outside recording {recording} "
                    f"({len(samples) / rate:.2f}s)"
                )
                continue
            yield utterance, samples[first:last], rate, None


def group_by_recording(segments: Iterable[Segment]) -> List[Tuple[str, List[Segment]]]:
    """Group consecutive segments of the same recording, keeping order."""
    groups: List[Tuple[str, List[Segment]]] = []
    for segment in segments:
        if groups and groups[-1][0] == segment[1]:
            groups[-1][1].append(segment)
        else:
            groups.append((segment[1], [segment]))
    return groups
