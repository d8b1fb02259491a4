"""ESPnet's training options with our models: Samba-ASR (`encoder: mamba`, `decoder: mamba`) and Speech-Mamba
(`encoder: speech_mamba`, `decoder: mamba`) trained by ESPnet's own `ASRTask.main` (what `python -m
espnet2.bin.asr_train` runs, here in-process so ~30 trainings fit in seconds) on a tiny generated corpus, and decoded
by `espnet2.bin.asr_inference.main`.

Covered: `model_conf.ctc_weight` 0.0 / 0.3 / 1.0, interCTC and self-conditioning, SpecAugment, `frontend: default`
and the plugin's `frontend: kaldi_fbank` on audio (Speech2Text on a waveform), and features given (`--input_size`,
no frontend), `normalize: global_mvn` (statistics from asr_train's `--collect_stats`) and `utterance_mvn`, `--freeze_param`, `--init_param` from another architecture with
`--ignore_init_mismatch`, `--resume` after training killed mid-epoch, `--use_amp` on CPU, LoRA fine-tuning
(`--use_adapter true --adapter lora`) trained and decoded. What ESPnet itself refuses
or ignores for every model is asserted as ESPnet's behaviour, not skipped.

Covered elsewhere: every `init:` scheme (test_espnet_initialization.py), adapter-only checkpoints (test_checkpoint_mismatch.py),
`--quantize_asr_model` (test_quantized_decoding.py), `batch_score` with `return_hs` (test_mamba_decoder.py), Mamba-2
collect-stats and training (test_mamba2_mixer_cpu.py).
"""
from __future__ import annotations

import signal
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import numpy as np
import pytest
import soundfile
import torch
import yaml
from espnet2.bin import asr_inference
from espnet2.tasks.asr import ASRTask
from espnet2.torch_utils.set_all_random_seed import set_all_random_seed

import espnet_samba
from test_asr_config_support import FRONTEND
from test_decoder_training import TOKENS, WORDS, corpus_args, write_tiny_corpus
from test_kaldi_fbank_stream import offline_fbank

SEED = 7
CTC_WEIGHT = 0.3  # TRAINING's model_conf.ctc_weight
N_MELS = 20  # FRONTEND's n_mels, and the fbank features' bins
ENCODERS = {
    "samba": ["--encoder", "mamba", "--encoder_conf", "{'output_size': 16, 'num_blocks': 2, 'd_state': 4}"],
    "speech_mamba": [
        "--encoder", "speech_mamba",
        "--encoder_conf", "{'output_size': 16, 'num_blocks': 2, 'num_attention_blocks': 1, 'attention_heads': 2, "
                          "'linear_units': 32, 'attention_chunk_size': 8, 'd_state': 4}",
    ],
}
MAMBA_DECODER = ["--decoder", "mamba", "--decoder_conf", "{'num_blocks': 1, 'd_state': 4}"]
TRAINING = [
    "--token_type", "char", "--frontend", "default", "--frontend_conf", FRONTEND, "--normalize", "utterance_mvn",
    "--specaug", "none", "--model_conf", f"ctc_weight={CTC_WEIGHT}", "--optim", "adam", "--optim_conf", "lr=0.005",
    "--seed", str(SEED), "--max_epoch", "1", "--ngpu", "0", "--num_workers", "0", "--batch_type", "sorted",
    "--batch_size", "3", "--use_amp", "false", "--use_matplotlib", "false", "--num_att_plot", "0",
    "--use_tensorboard", "false",
]
SPECAUG = [
    "--specaug", "specaug",
    "--specaug_conf", "{'apply_time_warp': True, 'time_warp_window': 5, 'freq_mask_width_range': [0, 5], "
                      "'num_freq_mask': 1, 'time_mask_width_range': [0, 5], 'num_time_mask': 1}",
]
VALID = ["utt6", "utt7"]
BEAM = 2


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One intra-op thread, so that reruns give the same floats; the previous count is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_fbank_features(directory: Path) -> None:
    """directory/feats.scp (.npy Kaldi fbank, (T, N_MELS) each) and feats_shape ("utt T,N_MELS") of its wav.scp,
    as `--feats_type fbank` gives asr_train features instead of audio."""
    scp, shapes = [], []
    for line in (directory / "wav.scp").read_text().splitlines():
        utt_id, wav = line.split()
        samples, _ = soundfile.read(wav, dtype="float32")
        feats = offline_fbank(samples, {"num_mel_bins": N_MELS}).numpy()
        np.save(directory / f"{utt_id}.npy", feats)
        scp.append(f"{utt_id} {directory / f'{utt_id}.npy'}")
        shapes.append(f"{utt_id} {feats.shape[0]},{feats.shape[1]}")
    (directory / "feats.scp").write_text("\n".join(scp) + "\n")
    (directory / "feats_shape").write_text("\n".join(shapes) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train/ (6 utterances) and valid/ (utt6, utt7) as audio and as fbank features, and tokens.txt."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    sentences = {f"utt{i}": " ".join(rng.choice(WORDS, size=2)) for i in range(8)}
    write_tiny_corpus(root / "train", dict(list(sentences.items())[:6]), rng)
    write_tiny_corpus(root / "valid", dict(list(sentences.items())[6:]), rng)
    for split in ("train", "valid"):
        write_fbank_features(root / split)
    (root / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    return root


def data_args(corpus: Path, features: bool) -> List[str]:
    """asr_train's data options for the audio, or for the features beside it (`--input_size`: no frontend)."""
    if not features:
        return corpus_args(corpus)
    return [
        arg.replace("wav.scp,speech,sound", "feats.scp,speech,npy").replace("speech_shape", "feats_shape")
        for arg in corpus_args(corpus)
    ] + ["--input_size", str(N_MELS)]


def training_options(corpus: Path, output_dir: Path, encoder: str, *options: str, features: bool = False) -> List[str]:
    """asr_train's options for the corpus: the `encoder` preset with the Mamba decoder and TRAINING's options, then
    `options` (later options override earlier ones; `*_conf` dicts are merged)."""
    return [
        *TRAINING, "--token_list", str(corpus / "tokens.txt"), *data_args(corpus, features), *ENCODERS[encoder],
        *MAMBA_DECODER, "--output_dir", str(output_dir), *options,
    ]


def train(corpus: Path, output_dir: Path, encoder: str, *options: str, features: bool = False) -> Path:
    """ESPnet's asr_train, in this process, with `training_options`. Returns output_dir."""
    espnet_samba.register()
    ASRTask.main(cmd=training_options(corpus, output_dir, encoder, *options, features=features))
    return output_dir


def decode(corpus: Path, experiment: Path, ctc_weight: float, features: bool = False) -> Path:
    """ESPnet's asr_inference (beam BEAM) of valid/ with experiment/1epoch.pth; returns its 1best_recog dir."""
    speech = "feats.scp,speech,npy" if features else "wav.scp,speech,sound"
    output_dir = experiment / f"decode_ctc_weight_{ctc_weight}"
    asr_inference.main([
        "--ngpu", "0", "--batch_size", "1", "--beam_size", str(BEAM), "--ctc_weight", str(ctc_weight),
        "--data_path_and_name_and_type", f"{corpus / 'valid' / speech}", "--key_file", str(corpus / "valid/text"),
        "--asr_train_config", str(experiment / "config.yaml"), "--asr_model_file", str(experiment / "1epoch.pth"),
        "--output_dir", str(output_dir),
    ])
    return output_dir / "1best_recog"


def utterances(kaldi_text: Path) -> List[str]:
    """The utterance ids of a Kaldi-style text file (`utt_id [value]` lines), sorted."""
    return sorted(line.split(maxsplit=1)[0] for line in kaldi_text.read_text().splitlines())


def epoch_state(experiment: Path, epoch: int = 1) -> Dict[str, torch.Tensor]:
    return torch.load(experiment / f"{epoch}epoch.pth", map_location="cpu")


def reported_losses(experiment: Path, epoch: int = 1) -> Dict[str, float]:
    """The trainer's training losses of `epoch` (loss, loss_ctc, ...: batch-size weighted means), from
    checkpoint.pth."""
    reporter = torch.load(experiment / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]
    stats = reporter["stats"][epoch]["train"]
    return {name: float(value) for name, value in stats.items() if name.startswith("loss")}


def initial_model(experiment: Path) -> torch.nn.Module:
    """The model as asr_train built it before training: main_worker seeds with --seed just before building, so the
    same seeding and its config.yaml build it again."""
    set_all_random_seed(SEED)
    model, _ = ASRTask.build_model_from_file(experiment / "config.yaml", None, "cpu")
    return model


def prefixes(state: Dict[str, torch.Tensor]) -> Set[str]:
    """The model parts a state dict holds ("encoder", "decoder", "ctc", ...)."""
    return {name.split(".")[0] for name in state}


@pytest.fixture(scope="module", params=sorted(ENCODERS))
def encoder(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def baseline(corpus: Path, encoder: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The encoder's model under TRAINING's options, trained uninterrupted for 2 epochs."""
    return train(corpus, tmp_path_factory.mktemp(f"{encoder}_baseline"), encoder, "--max_epoch", "2")


@pytest.fixture(scope="module")
def by_ctc_weight(
    corpus: Path, encoder: str, baseline: Path, tmp_path_factory: pytest.TempPathFactory
) -> Dict[float, Path]:
    """The encoder's model trained with model_conf.ctc_weight 0.0, CTC_WEIGHT (the baseline) and 1.0."""
    runs = {
        weight: train(corpus, tmp_path_factory.mktemp(f"{encoder}_ctc_{weight}"), encoder,
                      "--model_conf", f"ctc_weight={weight}")
        for weight in (0.0, 1.0)
    }
    return {**runs, CTC_WEIGHT: baseline}


@pytest.mark.parametrize("ctc_weight", [0.0, CTC_WEIGHT, 1.0])
def test_ctc_weight_builds_and_trains_the_branches_espnet_uses(corpus, by_ctc_weight, ctc_weight):
    """ESPnetASRModel drops the CTC module at weight 0 and the decoder at weight 1 (config.yaml still names
    `decoder: mamba`); the loss is the weighted sum of the branches it keeps, and each model decodes with the same
    --ctc_weight."""
    experiment = by_ctc_weight[ctc_weight]
    state = epoch_state(experiment)
    assert ("ctc" in prefixes(state), "decoder" in prefixes(state)) == (ctc_weight > 0.0, ctc_weight < 1.0)
    assert yaml.safe_load((experiment / "config.yaml").read_text())["decoder"] == "mamba"
    stats = reported_losses(experiment)
    assert ("loss_ctc" in stats, "loss_att" in stats) == (ctc_weight > 0.0, ctc_weight < 1.0)
    expected_loss = ctc_weight * stats.get("loss_ctc", 0.0) + (1.0 - ctc_weight) * stats.get("loss_att", 0.0)
    assert np.isfinite(stats["loss"]) and stats["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert utterances(decode(corpus, experiment, ctc_weight) / "token") == VALID


def test_without_ctc_espnet_cannot_decode_with_a_ctc_weight(corpus, by_ctc_weight):
    """ESPnet's limit for every model: asr_inference wraps `asr_model.ctc` (None at ctc_weight 0) in its CTC scorer
    without checking, so --ctc_weight > 0 fails at the first scoring."""
    with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'log_softmax'"):
        decode(corpus, by_ctc_weight[0.0], CTC_WEIGHT)


def test_without_decoder_a_ctc_weight_below_1_searches_arbitrary_tokens(corpus, by_ctc_weight):
    """ESPnet's limit for every CTC-only model: under --ctc_weight 0.5 (asr_inference's default) BeamSearch leaves
    the missing decoder out but still pre-beams on the full scorers' scores, all zero without a decoder. So it
    decodes, but only among the int(1.5 * beam) token ids that torch.topk picks from zeros (here C, B, A: never
    <space>, nor <sos/eos>, so hypotheses run to the length limit). Decode such a model with --ctc_weight 1.0."""
    best = decode(corpus, by_ctc_weight[1.0], 0.5)
    pre_beam = set(torch.topk(torch.zeros(len(TOKENS)), int(1.5 * BEAM)).indices.tolist())
    decoded = {int(token) for line in (best / "token_int").read_text().splitlines() for token in line.split()[1:]}
    assert utterances(best / "token") == VALID
    assert decoded and decoded <= pre_beam


@pytest.mark.parametrize("conditioning", [False, True], ids=["interctc", "self_conditioning"])
def test_intermediate_ctc_and_self_conditioning(corpus, encoder, tmp_path, conditioning):
    """interctc_layer_idx [1]: layer 1's output feeds a CTC loss weighted into the CTC branch; with
    interctc_use_conditioning ESPnetASRModel adds `encoder.conditioning_layer`, which then trains (its gradient
    flows only through our encoders' self-conditioning path). asr_inference writes the layer's greedy CTC output."""
    experiment = train(
        corpus, tmp_path / "exp", encoder, "--encoder_conf", "interctc_layer_idx=[1]",
        "--encoder_conf", f"interctc_use_conditioning={str(conditioning).lower()}",
        "--model_conf", "interctc_weight=0.5",
    )
    stats = reported_losses(experiment)
    ctc_branch = 0.5 * stats["loss_ctc"] + 0.5 * stats["loss_interctc_layer1"]
    expected_loss = CTC_WEIGHT * ctc_branch + (1.0 - CTC_WEIGHT) * stats["loss_att"]
    assert stats["loss"] == pytest.approx(expected_loss, rel=1e-5)
    state = epoch_state(experiment)
    assert ("encoder.conditioning_layer.weight" in state) == conditioning
    if conditioning:
        initial = initial_model(experiment).state_dict()["encoder.conditioning_layer.weight"]
        assert not torch.equal(state["encoder.conditioning_layer.weight"], initial)
    best = decode(corpus, experiment, CTC_WEIGHT)
    assert utterances(best / "encoder_interctc_layer1.txt") == utterances(best / "token") == VALID


def test_specaug_changes_training_and_not_decoding(corpus, encoder, baseline, tmp_path):
    """specaug: specaug masks and warps the training features only: the same seed trains another model than the
    baseline's, and ESPnet's model skips it in eval mode, so decoding works."""
    experiment = train(corpus, tmp_path / "exp", encoder, *SPECAUG)
    assert yaml.safe_load((experiment / "config.yaml").read_text())["specaug"] == "specaug"
    trained, without_specaug = epoch_state(experiment), epoch_state(baseline)
    assert any(not torch.equal(value, without_specaug[name]) for name, value in trained.items())
    assert utterances(decode(corpus, experiment, CTC_WEIGHT) / "token") == VALID


LORA_RANK, LORA_ALPHA = 2, 8  # ESPnet's default alpha
LORA = ["--use_adapter", "true", "--adapter", "lora",
        "--adapter_conf", f"{{'rank': {LORA_RANK}, 'alpha': {LORA_ALPHA}, 'target_modules': ['in_proj']}}"]


def test_lora_fine_tuning_through_asr_train_decodes(corpus, encoder, baseline, tmp_path):
    """--use_adapter true --adapter lora on the trained baseline (--init_param): ESPnet swaps every mixer's in_proj
    for a loralib Linear and trains the low-rank pair (lora_B starts at zero). The epoch is saved after
    validation, in eval mode, where loralib has merged the pair into the weight (+ lora_B @ lora_A * alpha / rank,
    ESPnet's alpha 8). ESPnet's own limit, for every model: its replace_module hands the new Linear the old
    weight Parameter, undoing loralib's freeze, so the adapted weight trains as well (beyond the merged pair)
    unless --freeze_param names it. asr_inference rebuilds the adapters from config.yaml and decodes.
    (Adapter-only checkpoints and resuming them: test_checkpoint_mismatch.py.)"""
    experiment = train(corpus, tmp_path / "exp", encoder, "--init_param", str(baseline / "1epoch.pth"), *LORA)
    trained, base = epoch_state(experiment), epoch_state(baseline)
    adapted = {name[: -len(".lora_B")] for name in trained if name.endswith(".lora_B")}
    assert any(name.startswith("encoder.") for name in adapted) and any(name.startswith("decoder.") for name in adapted)
    assert all(name.endswith("in_proj") for name in adapted), adapted
    for module in adapted:
        low_rank = trained[f"{module}.lora_B"] @ trained[f"{module}.lora_A"] * (LORA_ALPHA / LORA_RANK)
        assert low_rank.abs().sum() > 0, module
        beyond_the_pair = trained[f"{module}.weight"] - base[f"{module}.weight"] - low_rank
        assert beyond_the_pair.abs().max() > 1e-4, module
    assert utterances(decode(corpus, experiment, CTC_WEIGHT) / "token") == VALID


def collect_stats(corpus: Path, output_dir: Path, features: bool) -> Path:
    """asr.sh's stage 10: asr_train --collect_stats over the audio or the features; returns train's
    feats_stats.npz (count, sum, sum_square per feature bin)."""
    train(corpus, output_dir, "samba", "--collect_stats", "true", features=features)
    return output_dir / "train" / "feats_stats.npz"


def mean_and_std(stats_file: Path) -> Tuple[np.ndarray, np.ndarray]:
    """GlobalMVN's statistics from a feats_stats.npz (its own formula: std floored at sqrt(1e-20))."""
    stats = np.load(stats_file)
    mean = stats["sum"] / stats["count"]
    return mean, np.sqrt(np.maximum(stats["sum_square"] / stats["count"] - mean**2, 1e-20))


@pytest.fixture(scope="module")
def audio_stats(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return collect_stats(corpus, tmp_path_factory.mktemp("audio_stats"), features=False)


@pytest.mark.parametrize("normalize", ["utterance_mvn", "global_mvn"])
def test_feature_normalization(corpus, encoder, baseline, audio_stats, tmp_path, normalize):
    """On audio through `frontend: default`: utterance_mvn (TRAINING's, stateless) and global_mvn with
    collect_stats' statistics, which the model file then carries as buffers."""
    if normalize == "utterance_mvn":
        experiment = baseline
    else:
        experiment = train(
            corpus, tmp_path / "exp", encoder, "--normalize", "global_mvn", "--normalize_conf",
            f"stats_file={audio_stats}",
        )
        mean, std = mean_and_std(audio_stats)
        state = epoch_state(experiment)
        np.testing.assert_allclose(state["normalize.mean"].numpy(), mean, rtol=1e-6)
        np.testing.assert_allclose(state["normalize.std"].numpy(), std, rtol=1e-6)
    config = yaml.safe_load((experiment / "config.yaml").read_text())
    assert (config["frontend"], config["input_size"], config["normalize"]) == ("default", None, normalize)
    assert ("normalize" in prefixes(epoch_state(experiment))) == (normalize == "global_mvn")
    assert utterances(decode(corpus, experiment, CTC_WEIGHT) / "token") == VALID


@pytest.mark.slow
def test_features_given_instead_of_audio(corpus, encoder, tmp_path):
    """`--input_size` with fbank features (asr.sh --feats_type fbank): ESPnet builds no frontend, collect_stats
    gathers the features' own statistics (oracle: their mean over every training frame) and global_mvn uses them;
    asr_inference decodes the features."""
    stats_file = collect_stats(corpus, tmp_path / "stats", features=True)
    frames = np.concatenate([np.load(path) for path in sorted((corpus / "train").glob("*.npy"))])
    np.testing.assert_allclose(mean_and_std(stats_file)[0], frames.mean(axis=0), rtol=1e-4)
    experiment = train(
        corpus, tmp_path / "exp", encoder, "--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats_file}",
        features=True,
    )
    config = yaml.safe_load((experiment / "config.yaml").read_text())
    assert (config["frontend"], config["input_size"]) == (None, N_MELS)
    assert "frontend" not in prefixes(epoch_state(experiment))
    assert utterances(decode(corpus, experiment, CTC_WEIGHT, features=True) / "token") == VALID


KALDI_FBANK_FRONTEND = ["--frontend", "kaldi_fbank", "--frontend_conf", f"{{'num_mel_bins': {N_MELS}}}"]


def test_kaldi_fbank_frontend_trains_on_audio_and_speech2text_decodes_a_waveform(corpus, encoder, tmp_path):
    """`frontend: kaldi_fbank` (the plugin's): trained from raw audio, the model computes the recipe's features
    itself (oracle: the corpus' offline Kaldi fbank .npy files), ESPnet's asr_inference decodes wav.scp and its
    `Speech2Text` takes a waveform read from a wav file, as the README's example does."""
    frontend_at = TRAINING.index("--frontend")
    options = TRAINING[:frontend_at] + KALDI_FBANK_FRONTEND + TRAINING[frontend_at + 4 :]
    espnet_samba.register()
    ASRTask.main(cmd=[
        *options, "--token_list", str(corpus / "tokens.txt"), *data_args(corpus, False), *ENCODERS[encoder],
        *MAMBA_DECODER, "--output_dir", str(tmp_path / "exp"),
    ])
    experiment = tmp_path / "exp"
    config = yaml.safe_load((experiment / "config.yaml").read_text())
    assert (config["frontend"], config["frontend_conf"]) == ("kaldi_fbank", {"num_mel_bins": N_MELS})
    assert utterances(decode(corpus, experiment, CTC_WEIGHT) / "token") == VALID

    speech2text = asr_inference.Speech2Text(
        asr_train_config=str(experiment / "config.yaml"), asr_model_file=str(experiment / "1epoch.pth"),
        beam_size=BEAM, ctc_weight=CTC_WEIGHT,
    )
    wav = corpus / "valid" / "utt6.wav"
    speech, _ = soundfile.read(wav, dtype="float32")
    with torch.no_grad():
        feats, _ = speech2text.asr_model.frontend(torch.from_numpy(speech)[None], torch.tensor([speech.size]))
    torch.testing.assert_close(feats[0], torch.from_numpy(np.load(corpus / "valid" / "utt6.npy")), rtol=1e-5, atol=1e-4)
    text, tokens, token_ids, hypothesis = speech2text(speech)[0]
    assert isinstance(text, str) and len(tokens) == len(token_ids)


def test_freeze_param_keeps_the_frozen_parameters(corpus, encoder, tmp_path):
    """--freeze_param encoder.embed encoder.encoders.0: those parameters leave training as they were built (the
    initial model rebuilt from --seed), every other parameter changed."""
    frozen_prefixes = ("encoder.embed.", "encoder.encoders.0.")
    experiment = train(corpus, tmp_path / "exp", encoder, "--freeze_param", "encoder.embed", "encoder.encoders.0")
    initial, trained = initial_model(experiment), epoch_state(experiment)
    parameters = dict(initial.named_parameters())
    frozen = {name for name in parameters if name.startswith(frozen_prefixes)}
    assert frozen and frozen != set(parameters)
    for name, value in parameters.items():
        assert torch.equal(trained[name], value.detach()) == (name in frozen), name


@pytest.mark.slow
def test_init_param_from_another_architecture(corpus, tmp_path):
    """--init_param of a Speech-Mamba model into Samba-ASR with --ignore_init_mismatch: ESPnet takes every tensor of
    the same name and shape (subsampling, the Mamba layer at index 1 of both encoders, decoder, CTC) and leaves the
    rest as built (encoders.0: an attention layer there, a Mamba layer here). lr 0 keeps 1epoch.pth the model as it
    started training: Adam's step is lr times a finite ratio, exactly 0. Without the flag ESPnet refuses: its
    strict load_state_dict names the keys that do not fit, and our checkpoint check adds the fix."""
    source = epoch_state(train(corpus, tmp_path / "speech_mamba", "speech_mamba"))
    init_param = ["--init_param", str(tmp_path / "speech_mamba" / "1epoch.pth")]
    experiment = train(
        corpus, tmp_path / "samba", "samba", *init_param, "--ignore_init_mismatch", "true", "--optim_conf", "lr=0.0"
    )
    initial, started = initial_model(experiment).state_dict(), epoch_state(experiment)
    fitting = {name for name, value in initial.items() if name in source and source[name].shape == value.shape}
    for part in ("encoder.embed.", "encoder.encoders.1.mamba.mixer.", "decoder.decoders.", "ctc."):
        assert any(name.startswith(part) for name in fitting), part
    assert not any(name.startswith("encoder.encoders.0.") for name in fitting)
    for name, value in started.items():
        assert torch.equal(value, source[name] if name in fitting else initial[name]), name
    with pytest.raises(RuntimeError, match=r"(?s)Error\(s\) in loading state_dict for ESPnetASRModel.*"
                                           r"Unexpected key\(s\) in state_dict: \"encoder.encoders.0.layer.self_attn"
                                           r".*the checkpoint does not fit MambaEncoder at 'encoder.'.*"
                                           r"--ignore_init_mismatch"):
        train(corpus, tmp_path / "refused", "samba", *init_param)


# asr_train in a child process whose optimizer kills it (SIGKILL: no handler, no cleanup, as `kill -9` or an
# out-of-memory kill would) at its `kill_at`-th step; argv: kill_at, then asr_train's options.
TRAIN_THEN_DIE = """
import os, signal, sys
import torch
import espnet_samba
from espnet2.tasks.asr import ASRTask

torch.set_num_threads(1)
kill_at, steps = int(sys.argv[1]), 0
adam_step = torch.optim.Adam.step

def step_or_die(self, *args, **kwargs):
    global steps
    steps += 1
    if steps == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return adam_step(self, *args, **kwargs)

torch.optim.Adam.step = step_or_die
espnet_samba.register()
ASRTask.main(cmd=sys.argv[2:])
"""
STEPS_PER_EPOCH = 2  # 6 training utterances in batches of TRAINING's --batch_size 3


def train_killed_at_step(corpus: Path, output_dir: Path, encoder: str, kill_at: int, *options: str) -> None:
    """`train`'s asr_train run in a child process that is killed by SIGKILL at its `kill_at`-th optimizer step."""
    child = subprocess.run(
        [sys.executable, "-c", TRAIN_THEN_DIE, str(kill_at), *training_options(corpus, output_dir, encoder, *options)],
        capture_output=True, text=True,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr[-3000:]


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_to_the_uninterrupted_model(corpus, encoder, baseline, tmp_path):
    """Killed by SIGKILL in the middle of epoch 2 (its first of STEPS_PER_EPOCH steps), then `--resume true`,
    against the baseline's uninterrupted 2 epochs, epoch by epoch. ESPnet writes checkpoint.pth at epoch ends
    only, so the resumed run restarts epoch 2 from the end of epoch 1 and the half-done epoch is lost, not
    corrupted. Exact equality, no tolerance: ESPnet reseeds every epoch with seed + epoch (dropout masks, batch
    order), checkpoint.pth restores model, Adam and reporter bit for bit, and one thread runs the same CPU ops in
    the same order in either process; any difference is state the checkpoint lost."""
    interrupted = tmp_path / "exp"
    train_killed_at_step(corpus, interrupted, encoder, STEPS_PER_EPOCH + 1, "--max_epoch", "2")
    checkpoint = torch.load(interrupted / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert sorted(checkpoint["reporter"]["stats"]) == [1], "the kill did not fall inside epoch 2"
    assert not (interrupted / "2epoch.pth").exists()
    first_epoch_written = (interrupted / "1epoch.pth").stat().st_mtime_ns

    train(corpus, interrupted, encoder, "--max_epoch", "2", "--resume", "true")
    assert (interrupted / "1epoch.pth").stat().st_mtime_ns == first_epoch_written, "epoch 1 was trained again"
    for epoch in (1, 2):
        resumed, uninterrupted = epoch_state(interrupted, epoch), epoch_state(baseline, epoch)
        assert resumed.keys() == uninterrupted.keys()
        for name, value in resumed.items():
            assert torch.equal(value, uninterrupted[name]), (epoch, name)
        assert reported_losses(interrupted, epoch) == reported_losses(baseline, epoch)


def test_use_amp_on_cpu_is_disabled_by_torch(corpus, encoder, baseline, tmp_path):
    """--use_amp true on a CPU device: ESPnet's limit, not a skip. Its trainer uses torch.cuda.amp's GradScaler and
    autocast, which torch disables with a warning when CUDA is not available, so training runs in float32 and
    reaches exactly the baseline's first epoch; the checkpoint holds the disabled scaler's empty state."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        experiment = train(corpus, tmp_path / "exp", encoder, "--use_amp", "true")
    messages = [str(warning.message) for warning in caught]
    assert any("GradScaler is enabled, but CUDA is not available.  Disabling." in m for m in messages)
    assert any("CUDA is not available or torch_xla is imported. Disabling autocast." in m for m in messages)
    assert torch.load(experiment / "checkpoint.pth", weights_only=False)["scaler"] == {}
    amp, float32 = epoch_state(experiment), epoch_state(baseline)
    assert all(torch.equal(value, float32[name]) for name, value in amp.items())
