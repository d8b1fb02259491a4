"""Endpoint detection and long-form transcription (espnet_samba.decoding.endpoint, .long_form,
espnet_samba.bin.asr_transcribe_long).

Oracles: segments worked out by hand from the rules on synthetic CTC posteriors; for a model, the same search and
rescoring run offline on each segment's slice of the offline encoder output alone; alignments and words worked out by
hand; for the long-form path, the times at which a recording of tones and pauses was built.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np
import pytest
import soundfile
import torch

from espnet2.tasks.asr import ASRTask
from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming, simulate_stream
from espnet_samba.bin.asr_transcribe_long import main as transcribe_main
from espnet_samba.bin.asr_transcribe_long import transcribe_long_audio
from espnet_samba.decoding.attention_rescoring import AttentionRescorer
from espnet_samba.decoding.ctc_prefix_search import CTCPrefixBeamSearch
from espnet_samba.decoding.endpoint import (
    END_OF_STREAM,
    MAX_SEGMENT_LENGTH,
    NO_ENDPOINTS,
    SILENCE_WITHOUT_SPEECH,
    TRAILING_SILENCE_AFTER_SPEECH,
    EndpointRules,
    SegmentingSearch,
    frames_for,
)
from espnet_samba.decoding.long_form import group_words, srt_time, token_spans
from espnet_samba.decoding.streaming_recognizer import StreamingRecognizer
from test_streaming_support import RATE, noise, write_causal_model

SILENCE, PAUSE, A, B, C = "silence", "pause", 1, 2, 3  # PAUSE: blank likeliest, but below the silence threshold


def posteriors(frames: Sequence) -> torch.Tensor:
    """Log posteriors over (blank, A, B, C): silence P(blank) 0.9, a pause 0.7, a token 0.9 for that token."""
    rows = []
    for frame in frames:
        row = [0.9, 1 / 30, 1 / 30, 1 / 30] if frame == SILENCE else [0.7, 0.1, 0.1, 0.1]
        if frame not in (SILENCE, PAUSE):
            row = [0.05, 0.05, 0.05, 0.05]
            row[frame] = 0.85
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64).log()


# frame:  0-1 silence, 2 A, 3-5 silence            -> trailing silence (0.3 s) after speech ends [0, 6)
#         6-7 silence, 8 a pause, 9-13 silence    -> 0.5 s of silence, nothing decoded: [6, 14) dropped
#         14-23 B C B C ... (1.0 s)               -> max segment length ends [14, 24)
#         24 A, 25-26 silence, end of stream      -> [24, 27)
STREAM = [SILENCE] * 2 + [A] + [SILENCE] * 5 + [PAUSE] + [SILENCE] * 5 + [B, C] * 5 + [A] + [SILENCE] * 2
EXPECTED = [
    (0, 6, TRAILING_SILENCE_AFTER_SPEECH, (A,)),
    (6, 14, SILENCE_WITHOUT_SPEECH, ()),
    (14, 24, MAX_SEGMENT_LENGTH, (B, C) * 5),
    (24, 27, END_OF_STREAM, (A,)),
]
RULES = EndpointRules(
    trailing_silence_after_speech=0.3, silence_without_speech=0.5, max_segment_length=1.0, blank_threshold=0.8
)


def segment_stream(rules: EndpointRules, log_probs: torch.Tensor, sizes: List[int]):
    segmenter = SegmentingSearch(CTCPrefixBeamSearch(beam_size=3), rules, frame_shift=0.1)
    endpoints, start = [], 0
    for size in sizes:
        endpoints += segmenter.step(log_probs[start : start + size])
        start += size
    endpoints.append(segmenter.finish())
    return [(e.start_frame, e.end_frame, e.rule, e.prefixes[0].tokens) for e in endpoints]


@pytest.mark.parametrize("sizes", [[27], [1] * 27, [5, 0, 9, 1, 12]], ids=["whole", "frames", "chunks"])
def test_rules_cut_synthetic_posteriors_where_worked_out_by_hand(sizes):
    assert segment_stream(RULES, posteriors(STREAM), sizes) == EXPECTED


def test_each_rule_can_be_turned_off():
    log_probs = posteriors(STREAM)
    assert segment_stream(NO_ENDPOINTS, log_probs, [27]) == [(0, 27, END_OF_STREAM, (A, *(B, C) * 5, A))]
    only_silence = EndpointRules(0.3, 0.5, None, 0.8)
    assert [e[:3] for e in segment_stream(only_silence, log_probs, [27])] == [
        (0, 6, TRAILING_SILENCE_AFTER_SPEECH), (6, 14, SILENCE_WITHOUT_SPEECH), (14, 27, END_OF_STREAM)
    ]
    strict_silence = EndpointRules(0.3, 0.5, None, blank_threshold=0.95)  # no frame is silence
    assert [e[:3] for e in segment_stream(strict_silence, log_probs, [27])] == [(0, 27, END_OF_STREAM)]


def test_durations_round_to_whole_frames_and_bad_rules_are_refused():
    assert frames_for(0.3, 0.1) == 3 and frames_for(1.0, 0.032) == 31 and frames_for(0.001, 0.032) == 1
    assert frames_for(None, 0.1) is None
    with pytest.raises(ValueError, match="max_segment_length must be a positive number of seconds or off, got 0"):
        EndpointRules(max_segment_length=0)
    with pytest.raises(ValueError, match=r"blank_threshold must lie in \(0, 1\]"):
        EndpointRules(blank_threshold=1.5)


# ----- the recogniser: segments of a model ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("endpoint_model")
    write_causal_model(root)
    return root


@pytest.fixture(scope="module")
def model(model_dir):
    asr_model, _ = ASRTask.build_model_from_file(model_dir / "config.yaml", model_dir / "model.pth", "cpu")
    return asr_model.eval()


def offline_segment_frames(model, signal: torch.Tensor, start: int, stop: int, restart: bool) -> torch.Tensor:
    """Encoder frames [start, stop) of the offline model: from its features from frame start on (restarted
    encoder), or of the whole signal (the state run on)."""
    with torch.no_grad():
        feats, lengths = model._extract_feats(signal[None], torch.tensor([signal.numel()]))
        feats, lengths = model.normalize(feats, lengths)
        first = start * model.encoder.frame_stride() if restart else 0
        memory, _, _ = model.encoder(feats[:, first:], lengths - first)
    return memory[0, : stop - start] if restart else memory[0, start:stop]


@pytest.mark.parametrize("restart", [True, False])
def test_each_segment_is_decoded_as_if_alone_and_its_frames_released(model, restart):
    """Random weights decode no silence: the max_segment_length rule cuts 10-frame segments (0.32 s). With
    restart_encoder each segment is the offline encoding of the features from its first frame on; without, the
    frames of the offline encoding of the whole signal."""
    rescorer = AttentionRescorer(model.decoder, None, model.sos, model.eos, 0.3, 0.0, 0.0)
    rules = EndpointRules(None, None, max_segment_length=0.32, restart_encoder=restart)
    recognizer = StreamingRecognizer(model, beam_size=3, rescorer=rescorer, nbest=2, endpoint_rules=rules)
    assert recognizer.frame_shift == pytest.approx(128 / RATE * 4)  # hop 128 samples, conv2d subsampling
    signal = torch.from_numpy(noise(12000, 6))
    segments, kept = [], []
    for start in range(0, 12000, 1000):
        segments += recognizer.accept(signal[start : start + 1000], is_final=start + 1000 >= 12000)
        kept.append(recognizer._memory.size(0))
    assert max(kept) < 10
    with torch.no_grad():
        memory, _ = model.encode(signal[None], torch.tensor([12000]))
    total = memory.size(1)
    assert [(s.start_frame, s.end_frame) for s in segments] == [(f, min(f + 10, total)) for f in range(0, total, 10)]
    for segment in segments:
        frames = offline_segment_frames(model, signal, segment.start_frame, segment.end_frame, restart)
        log_probs = model.ctc.log_softmax(frames[None])[0]
        search = CTCPrefixBeamSearch(3, blank=model.blank_id)
        search.step(log_probs)
        expected = rescorer(search.nbest(3), frames)[:2]
        assert [h.tokens for h in segment.hypotheses] == [h.tokens for h in expected]
        torch.testing.assert_close(segment.log_probs, log_probs, rtol=1e-4, atol=1e-4)


def test_speech2text_joins_the_segments_of_an_utterance(model_dir):
    rules = EndpointRules(None, None, max_segment_length=0.32)
    speech = torch.from_numpy(noise(15000, 7))
    cut = Speech2TextStreaming(model_dir / "config.yaml", model_dir / "model.pth", beam_size=3, ctc_weight=1.0,
                               endpoint_rules=rules)
    (_, _, ids, hypothesis), = simulate_stream(cut, speech, 1000)
    recognizer = cut.recognizer
    segments = []
    for start in range(0, 15000, 1000):
        segments += recognizer.accept(speech[start : start + 1000], is_final=start + 1000 >= 15000)
    assert len(segments) > 2
    assert ids == [token for segment in segments for token in segment.hypotheses[0].tokens]
    assert hypothesis.score == pytest.approx(sum(segment.hypotheses[0].score for segment in segments), abs=1e-6)


# ----- long-form transcription ---------------------------------------------------------------------------------------


def test_token_spans_follow_the_viterbi_path():
    # A _ _ A B B: the best path of tokens (A, A, B) puts A at 0, A at 3, B at 4-5
    frames = [A, SILENCE, SILENCE, A, B, B]
    assert token_spans(posteriors(frames), [A, A, B], blank=0) == [(0, 1), (3, 4), (4, 6)]
    assert token_spans(posteriors(frames), [], blank=0) == []


def test_words_of_char_bpe_and_word_tokens():
    assert group_words(["c", "a", "t", "<space>", "s", "a", "t"], "char") == [("cat", 0, 3), ("sat", 4, 7)]
    assert group_words(["\u2581ca", "t", "\u2581sa", "t", "\u2581"], "bpe") == [("cat", 0, 2), ("sat", 2, 4)]
    assert group_words(["cat", "sat"], "word") == [("cat", 0, 1), ("sat", 1, 2)]
    assert srt_time(3725.0426) == "01:02:05,043"


# The tone model's tokens: "a", "b" and "c" of the char token list, one tone each.
TONES = {"a": 440.0, "b": 1200.0, "c": 2600.0}
FRAME_SHIFT = 128 / RATE * 4  # hop 128 samples, conv2d subsampling


def tone(letter: str, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return 0.4 * np.sin(2 * math.pi * TONES[letter] * t)


def quiet(seconds: float, seed: int) -> np.ndarray:
    return noise(int(seconds * RATE), seed) * 0.003


def labelled_frames(model, pieces: Sequence[Tuple[str, np.ndarray]]) -> Tuple[torch.Tensor, List[int]]:
    """The encoder frames (N, D) of the signal the (label, samples) pieces make, encoded from its start, and their
    targets: quiet ("") blank, each tone its letter up to its end; the first 0.1 s of each piece and the last
    0.1 s of a quiet one are left out."""
    signal = torch.from_numpy(np.concatenate([samples for _, samples in pieces]).astype(np.float32))
    intervals, time = [], 0.0
    for label, samples in pieces:
        target = model.token_list.index(label) if label else model.blank_id
        end = time + samples.size / RATE
        intervals.append((time + 0.1, end if label else end - 0.1, target))
        time = end
    with torch.no_grad():
        memory, _ = model.encode(signal[None], torch.tensor([signal.numel()]))
    frames, targets = [], []
    for frame in range(memory.size(1)):
        for start, end, label in intervals:
            if start <= frame * FRAME_SHIFT < end:
                frames.append(frame)
                targets.append(label)
    return memory[0, frames], targets


def train_ctc_head(model, steps: int = 300) -> None:
    """Fit only the CTC output layer to the random encoder's outputs, on a recording of tones between quiet
    stretches and on each tone as an utterance of its own, which starts within 10 ms of the tone (as a model
    trained on utterances meets a segment whose encoder restarted at the speech onset)."""
    recording = [piece for index, letter in enumerate("abcacb") for piece in (("", quiet(0.6, index)),
                                                                             (letter, tone(letter, 0.6)))]
    utterances = [[("", quiet(0.01, 20 + index)), (letter, tone(letter, 0.6)), ("", quiet(0.4, 30 + index))]
                  for index, letter in enumerate("abc")]
    examples = [labelled_frames(model, pieces) for pieces in [recording] + utterances]
    inputs = torch.cat([frames for frames, _ in examples])
    targets = torch.tensor([target for _, labels in examples for target in labels])
    layer = model.ctc.ctc_lo
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(layer(inputs), targets).backward()
        optimizer.step()


@pytest.fixture(scope="module")
def trained_model_dir(tmp_path_factory) -> Path:
    """The causal model with its CTC layer fitted to tell the tones from quiet (a quickly trained model)."""
    root = tmp_path_factory.mktemp("tone_model")
    config = write_causal_model(root, seed=3)
    model, _ = ASRTask.build_model_from_file(config, root / "model.pth", "cpu")
    train_ctc_head(model.eval())
    torch.save(model.state_dict(), root / "model.pth")
    return root


def test_a_recording_with_pauses_is_cut_at_the_pauses(trained_model_dir, tmp_path):
    # tone a at 0.5-1.1 s, b at 2.6-3.2 s, c at 4.7-5.3 s; 1.5 s pauses; the recording ends at 6.1 s
    pieces = [quiet(0.5, 10), tone("a", 0.6), quiet(1.5, 11), tone("b", 0.6), quiet(1.5, 12), tone("c", 0.6),
              quiet(0.8, 13)]
    wav = tmp_path / "talk.wav"
    soundfile.write(wav, np.concatenate(pieces), RATE, subtype="PCM_16")
    output_dir = tmp_path / "out"
    transcribe_main([
        "--wav", str(wav), "--output_dir", str(output_dir),
        "--asr_train_config", str(trained_model_dir / "config.yaml"),
        "--asr_model_file", str(trained_model_dir / "model.pth"),
        "--beam_size", "3", "--ctc_weight", "1.0", "--block_seconds", "0.37",
        "--endpoint_trailing_silence_after_speech", "0.5", "--endpoint_silence_without_speech", "3.0",
    ])
    segments = [line.split() for line in (output_dir / "segments").read_text().splitlines()]
    texts = dict(line.split(" ", 1) for line in (output_dir / "text").read_text().splitlines())
    assert [texts[segment[0]] for segment in segments] == ["a", "b", "c"]
    spans = [(float(segment[2]), float(segment[3])) for segment in segments]
    # each segment ends 0.5 s of quiet after its tone (a few frames later, while the encoder's memory of it fades)
    for (start, end), tone_end in zip(spans, (1.1, 3.2, 5.3)):
        assert tone_end + 0.5 <= end <= tone_end + 0.8, (start, end)
    # the first segment starts with the recording; the next ones at their tone's energy onset (onset_margin 0),
    # to the input frame (8 ms; ESPnet's centred STFT frame sees 16 ms ahead), the pause before it left out
    assert spans[0][0] == 0.0
    for (start, _), (_, previous_end), tone_start in zip(spans[1:], spans[:-1], (2.6, 4.7)):
        assert previous_end < tone_start - 0.04 <= start <= tone_start, (start, previous_end)
    for segment in segments:
        assert segment[1] == "talk" and re.fullmatch(r"talk-\d{7}-\d{7}", segment[0])
    words = [line.split() for line in (output_dir / "ctm").read_text().splitlines()]
    assert [word[4] for word in words] == ["a", "b", "c"]
    for word, (tone_start, tone_end) in zip(words, [(0.5, 1.1), (2.6, 3.2), (4.7, 5.3)]):
        assert word[:2] == ["talk", "1"] and tone_start - 0.1 <= float(word[2]) <= tone_end + 0.2
    cues = [cue.splitlines() for cue in (output_dir / "subtitles.srt").read_text().strip().split("\n\n")]
    assert [cue[0] for cue in cues] == ["1", "2", "3"] and [cue[2] for cue in cues] == ["a", "b", "c"]
    assert re.fullmatch(r"00:00:0\d,\d{3} --> 00:00:0\d,\d{3}", cues[0][1])


def test_memory_does_not_grow_with_the_recording(trained_model_dir, tmp_path):
    """Two minutes of tones and pauses: what the recogniser keeps stays within one segment, never the file."""
    pieces = []
    for index in range(40):
        pieces += [tone("abc"[index % 3], 0.5), quiet(2.5, index)]
    wav = tmp_path / "long.wav"
    soundfile.write(wav, np.concatenate(pieces), RATE, subtype="PCM_16")
    speech2text = Speech2TextStreaming(trained_model_dir / "config.yaml", trained_model_dir / "model.pth",
                                       beam_size=3, ctc_weight=1.0, endpoint_rules=EndpointRules(0.5, 3.0, 20.0))
    recognizer, kept = speech2text.recognizer, []
    accept = recognizer.accept

    def accept_and_measure(chunk: torch.Tensor, is_final: bool):
        segments = accept(chunk, is_final)
        buffer = recognizer.features._buffer
        kept.append((recognizer._memory.size(0), 0 if buffer is None else buffer.numel()))
        return segments

    recognizer.accept = accept_and_measure
    assert transcribe_long_audio(speech2text, wav, tmp_path / "out") == 40
    assert max(frames for frames, _ in kept) < round(4.0 / FRAME_SHIFT)  # a pause and a tone at most
    assert max(samples for _, samples in kept) < 256 + 128 + 128  # n_fft + hop + pad
