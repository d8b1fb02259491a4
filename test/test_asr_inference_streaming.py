"""The streaming entry point (espnet_samba.bin.asr_inference_streaming): ESPnet's Speech2TextStreaming interface and
its command line, on a tiny random causal model.

Oracles: the model's offline `encode` followed by the same two passes (whole-utterance input); the CTC prefix search
over the offline frames so far (partial results); a fresh recogniser (reset); ESPnet's own
`espnet2.bin.asr_inference` on the same model and data (the output layout).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List

import pytest
import soundfile
import torch

from espnet_samba.bin import asr_inference_streaming
from espnet_samba.bin.asr_inference_streaming import Speech2TextStreaming, simulate_stream
from espnet_samba.decoding.ctc_prefix_search import CTCPrefixBeamSearch
from test_streaming_support import noise, write_causal_model, write_wav_scp

BEAM = 4


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("streaming_model")
    write_causal_model(root)
    write_wav_scp(root, [6000, 7100, 8300])
    return root


def speech2text(model_dir: Path, **options) -> Speech2TextStreaming:
    """The recogniser with the rescoring second pass (the one `offline_results` repeats), unless told otherwise."""
    options = {"beam_size": BEAM, "ctc_weight": 0.3, "second_pass": "attention_rescoring", **options}
    return Speech2TextStreaming(model_dir / "config.yaml", model_dir / "model.pth", **options)


def offline_results(recognizer: Speech2TextStreaming, speech: torch.Tensor):
    """The whole utterance through the offline encoder, then the same CTC search and rescoring."""
    model = recognizer.asr_model
    with torch.no_grad():
        memory, _ = model.encode(speech[None], torch.tensor([speech.numel()]))
        log_probs = model.ctc.log_softmax(memory)[0]
    search = CTCPrefixBeamSearch(BEAM, blank=model.blank_id)
    search.step(log_probs)
    return recognizer.recognizer.rescorer(search.nbest(BEAM), memory[0]), log_probs


def token_ids(results) -> List[List[int]]:
    return [ids for _, _, ids, _ in results]


def test_whole_utterance_input_equals_the_offline_two_passes(model_dir):
    recognizer = speech2text(model_dir, nbest=3)
    speech = torch.from_numpy(noise(8000, 0))
    expected, _ = offline_results(recognizer, speech)
    results = recognizer(speech, is_final=True)
    assert token_ids(results) == [list(h.tokens) for h in expected[:3]]
    for (text, tokens, ids, hypothesis), oracle in zip(results, expected):
        assert hypothesis.score == pytest.approx(oracle.score, abs=1e-3)
        assert hypothesis.yseq.tolist() == [recognizer.asr_model.sos, *ids, recognizer.asr_model.eos]
        assert tokens == recognizer.converter.ids2tokens(ids)
        assert text == recognizer.tokenizer.tokens2text(tokens)
        assert set(hypothesis.scores) == {"ctc", "decoder", "length_bonus"}


def test_chunk_size_does_not_change_the_final_ctc_result(model_dir):
    recognizer = speech2text(model_dir, ctc_weight=1.0, nbest=BEAM)
    speech = torch.from_numpy(noise(7001, 1))
    whole = recognizer(speech, is_final=True)
    for chunk_length in (1, 37, 160, 999, 7000, 7001, 9000):
        results = simulate_stream(recognizer, speech, chunk_length)
        assert token_ids(results) == token_ids(whole), chunk_length
        assert [r[3].score for r in results] == pytest.approx([r[3].score for r in whole], abs=1e-3)


def test_partial_results_are_the_ctc_search_over_the_frames_so_far(model_dir):
    recognizer = speech2text(model_dir, nbest=2)
    speech = torch.from_numpy(noise(8000, 2))
    _, log_probs = offline_results(recognizer, speech)
    seen_frames = []
    for start in range(0, 7000, 1000):
        partial = recognizer(speech[start : start + 1000], is_final=False)
        frames = recognizer.recognizer.encoder_state.offset
        search = CTCPrefixBeamSearch(BEAM, blank=recognizer.asr_model.blank_id)
        search.step(log_probs[:frames])
        assert token_ids(partial) == [list(p.tokens) for p in search.nbest(2)]
        assert [r[3].score for r in partial] == pytest.approx([p.log_prob for p in search.nbest(2)], abs=1e-3)
        assert all(set(r[3].scores) == {"ctc"} for r in partial)
        seen_frames.append(frames)
    assert seen_frames == sorted(seen_frames) and seen_frames[0] < seen_frames[-1]
    final = recognizer(speech[7000:], is_final=True)
    expected, _ = offline_results(recognizer, speech)
    assert token_ids(final) == [list(h.tokens) for h in expected[:2]]


def test_reset_between_utterances_equals_a_fresh_recogniser(model_dir):
    first, second = torch.from_numpy(noise(6000, 3)), torch.from_numpy(noise(6500, 4))
    reused = speech2text(model_dir)
    reused(first[:4000], is_final=False)
    reused.reset()
    after_reset = simulate_stream(reused, second, 800)
    after_final = simulate_stream(reused, second, 800)  # is_final ends the utterance: the next call starts anew
    fresh = simulate_stream(speech2text(model_dir), second, 800)
    assert token_ids(after_reset) == token_ids(after_final) == token_ids(fresh)
    assert after_reset[0][3].score == pytest.approx(fresh[0][3].score, abs=1e-6)


def test_the_lm_and_penalty_enter_the_final_score(model_dir, tmp_path):
    from espnet2.tasks.lm import LMTask

    LMTask.main(cmd=["--dry_run", "true", "--output_dir", str(tmp_path), "--token_list", str(model_dir / "tokens.txt"),
                     "--token_type", "char", "--lm", "seq_rnn", "--lm_conf", "{'unit': 8, 'nlayers': 1}"])
    recognizer = speech2text(model_dir, lm_train_config=tmp_path / "config.yaml", lm_weight=0.5, penalty=0.2)
    (_, _, ids, hypothesis), = recognizer(torch.from_numpy(noise(6000, 5)), is_final=True)
    scores = hypothesis.scores
    expected = 0.7 * scores["decoder"] + 0.3 * scores["ctc"] + 0.5 * scores["lm"] + 0.2 * len(ids)
    assert hypothesis.score == pytest.approx(expected, abs=1e-6)


# ----- the joint beam search second pass -----------------------------------------------------------------------------


@pytest.mark.parametrize("utterance", [0, 2])
def test_the_joint_beam_search_gives_espnets_offline_decoding(model_dir, utterance):
    """Oracle: ESPnet's own Speech2Text on the whole utterance, same weights and beam."""
    from espnet2.bin.asr_inference import Speech2Text

    samples, _ = soundfile.read(model_dir / f"utt{utterance}.wav", dtype="float32")
    speech = torch.from_numpy(samples)
    options = dict(beam_size=BEAM, ctc_weight=0.3, penalty=0.5, nbest=2)
    offline = Speech2Text(str(model_dir / "config.yaml"), str(model_dir / "model.pth"), **options)(speech)
    recognizer = speech2text(model_dir, second_pass="joint_beam_search", **options)
    for chunk_length in (333, 2000):
        streamed = simulate_stream(recognizer, speech, chunk_length)
        assert token_ids(streamed) == [ids for _, _, ids, _ in offline], chunk_length
        for (_, _, _, ours), (_, _, _, espnets) in zip(streamed, offline):
            assert ours.score == pytest.approx(float(espnets.score), abs=1e-3)
            assert ours.scores == pytest.approx({k: float(v) for k, v in espnets.scores.items()}, abs=1e-3)


def test_auto_searches_with_a_decoder_and_rescores_ctc_only(model_dir):
    assert speech2text(model_dir, second_pass="auto").second_pass == "joint_beam_search"
    assert speech2text(model_dir, second_pass="auto", ctc_weight=1.0).second_pass == "attention_rescoring"
    with pytest.raises(ValueError, match=r"joint beam search needs the attention decoder \(ctc_weight < 1.0"):
        speech2text(model_dir, second_pass="joint_beam_search", ctc_weight=1.0)
    with pytest.raises(ValueError, match="second_pass must be one of"):
        speech2text(model_dir, second_pass="rescore")


def test_a_beam_larger_than_the_vocabulary_is_refused_by_name(model_dir):
    vocabulary = len(speech2text(model_dir).asr_model.token_list)
    with pytest.raises(ValueError, match=rf"beam_size {vocabulary + 1} is larger than the model's vocabulary"):
        speech2text(model_dir, second_pass="joint_beam_search", beam_size=vocabulary + 1)
    speech2text(model_dir, second_pass="joint_beam_search", beam_size=vocabulary)


# ----- the command line ----------------------------------------------------------------------------------------------


def run(main, model_dir: Path, output_dir: Path, *options: str) -> Path:
    main([
        "--output_dir", str(output_dir),
        "--asr_train_config", str(model_dir / "config.yaml"),
        "--asr_model_file", str(model_dir / "model.pth"),
        "--data_path_and_name_and_type", f"{model_dir / 'wav.scp'},speech,sound",
        "--beam_size", str(BEAM),
        "--ctc_weight", "0.3",
        *options,
    ])
    return output_dir


def layout(output_dir: Path) -> dict:
    """Every file under output_dir with the utterance ids of its lines."""
    return {
        str(path.relative_to(output_dir)): [line.split(" ", 1)[0] for line in path.read_text().splitlines()]
        for path in sorted(output_dir.rglob("*")) if path.is_file()
    }


def test_command_line_writes_espnets_layout(model_dir, tmp_path):
    from espnet2.bin import asr_inference

    ours = layout(run(asr_inference_streaming.main, model_dir, tmp_path / "ours", "--sim_chunk_length", "700",
                      "--nbest", "2"))
    espnets = layout(run(asr_inference.main, model_dir, tmp_path / "espnet", "--nbest", "2"))
    assert ours == espnets
    assert sorted(ours) == [f"{n}best_recog/{name}" for n in (1, 2) for name in ("score", "text", "token", "token_int")]
    assert ours["1best_recog/text"] == ["utt0", "utt1", "utt2"]


def test_command_line_results_are_speech2text_streaming_results(model_dir, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    output = run(asr_inference_streaming.main, model_dir, tmp_path / "out", "--sim_chunk_length", "0")
    recognizer = speech2text(model_dir, second_pass="auto")
    assert recognizer.second_pass == "joint_beam_search"
    for line in (output / "1best_recog" / "token_int").read_text().splitlines():
        key, *ids = line.split()
        samples, _ = soundfile.read(model_dir / f"{key}.wav", dtype="float32")
        assert [int(i) for i in ids] == token_ids(recognizer(torch.from_numpy(samples), is_final=True))[0]
    assert "utt2: total log probability: " in caplog.text  # asr.sh's stage 12 counts these lines


def test_command_line_refuses_options_of_espnets_block_search(model_dir, tmp_path):
    with pytest.raises(ValueError, match="--maxlenratio 0.5: these options belong to ESPnet's block-synchronous"):
        run(asr_inference_streaming.main, model_dir, tmp_path / "out", "--maxlenratio", "0.5")
