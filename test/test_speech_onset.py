"""energy_onset: the first feature frame where the loudness rises from the pause towards the speech."""
import torch

from espnet_samba.decoding.speech_onset import energy_onset

BINS = 40


def frames(levels, bins=BINS, seed=0):
    """Log-energy-like frames (T, bins): each frame's bins near its level, with a little noise."""
    noise = torch.randn(len(levels), bins, generator=torch.Generator().manual_seed(seed)) * 0.05
    return torch.tensor(levels, dtype=torch.float32)[:, None] + noise


def test_the_onset_is_the_first_frame_above_a_tenth_of_the_rise():
    # digital silence (-16), a soft start (-14: 12 % of the way up), then speech (0)
    assert energy_onset(frames([-16, -16, -16, -14, -8, 0, 0])) == 3
    # the soft start at 5 % of the way stays below the threshold
    assert energy_onset(frames([-16, -16, -15.2, -8, 0])) == 3


def test_a_rise_in_a_few_bins_counts_as_much_as_in_all():
    quiet = torch.full((6, BINS), -4.0)
    quiet[4:, 7] = 3.0  # a tone: one bin rises
    assert energy_onset(quiet) == 4


def test_no_onset_in_an_empty_or_flat_window():
    assert energy_onset(torch.zeros(0, BINS)) is None
    assert energy_onset(torch.full((5, BINS), -3.0)) is None


def test_a_window_that_starts_in_speech_has_its_onset_at_its_start():
    assert energy_onset(frames([0, 0, -16, 0])) == 0
