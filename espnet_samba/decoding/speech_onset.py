"""Where speech begins after a pause, to the input feature frame: the point a restarted encoder starts from.

The CTC posteriors tell that speech has begun only on the encoder's frame grid (every `frame_stride` input frames,
60 ms for the demo's conv2d6) and often a frame or two late. A model trained on utterances that start within
~10 ms of their speech is sensitive to what comes before it (bench/bench_leading_silence.py measures its WER
against the silence prepended; bench/RESULTS_CPU.md has the demo's figures).
So the recogniser looks in the features around the first non-silent encoder frame for the rise of energy from the
pause to the speech, and restarts the encoder there.

Log filterbank features (any per-bin affine normalisation such as global_mvn) give each frame a loudness: its
largest feature value (a tone or a fricative raises a few bins only, which a mean over bins would hide in the
noise). The onset is the first frame whose loudness has risen `ONSET_RISE` of the way from the
quietest frame of the window (the pause: digital silence or noise) to its loudest (the speech).
"""
from __future__ import annotations

from typing import Optional

import torch

ONSET_RISE = 0.1


def energy_onset(feats: torch.Tensor, rise: float = ONSET_RISE) -> Optional[int]:
    """The first frame of `feats` (T, F) whose loudness lies `rise` of the way from the window's quietest frame to
    its loudest; None when the window is empty or flat (no onset in it)."""
    if feats.size(0) == 0:
        return None
    loudness = feats.float().max(dim=1).values
    floor, peak = loudness.min(), loudness.max()
    if peak <= floor:
        return None
    return int((loudness >= floor + rise * (peak - floor)).nonzero()[0])
