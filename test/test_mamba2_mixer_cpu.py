"""`Mamba2Mixer` on CPU (pure PyTorch) against mamba-ssm's own `Mamba2.step`, run frame by frame on CPU; and
`mixer_type: mamba2` in the encoder and through ESPnet's `asr_train` (collect-stats, then training) on CPU.

The oracle is `mamba_ssm.modules.mamba2.Mamba2` with its convolution kernel set to None and its gated RMSNorm on
mamba-ssm's `rms_norm_ref`, so that its step takes mamba-ssm's PyTorch code; its state update is that code too
(`selective_state_update = None`), or for grouped B/C, which that code does not support, mamba-ssm's
`selective_state_update_ref`. Parameters are drawn in float32 and both models run in float64: the oracle casts
A_log and the norm weight to float32, which is then exact.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable, Dict, List, Tuple

import numpy as np
import pytest
import torch
import yaml

from espnet_samba.asr.encoder.mamba_encoder import MambaEncoder
from espnet_samba.modules import mamba2_mixer
from espnet_samba.modules.mamba2_mixer import Mamba2Mixer, Mamba2Parameters
from espnet_samba.modules.mamba_mixer import MambaState
from espnet_samba.ops.kernels import CudaKernels, load_cuda_kernels
from test_decoder_training import CONFORMER_CONFIG, TOKENS, WORDS, corpus_args, run_espnet, write_tiny_corpus

D_MODEL, HEADDIM, D_STATE, CHUNK = 16, 8, 4, 8
LENGTHS = (1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5)
FLOAT64 = dict(rtol=1e-10, atol=1e-10)
CONFIGS: Dict[str, dict] = {
    "ngroups 1": {},
    "ngroups 2": dict(ngroups=2),
    "d_ssm < d_inner, norm before gate": dict(d_ssm=16, norm_before_gate=True),
    "no rmsnorm": dict(rmsnorm=False),
}
SIZES = dict(d_state=D_STATE, headdim=HEADDIM, chunk_size=CHUNK)

Pair = Tuple[Mamba2Mixer, torch.nn.Module]


@pytest.fixture
def make_pair(mamba_reference, monkeypatch) -> Callable[..., Pair]:
    """Builds our mixer and mamba-ssm's Mamba2 (its step on PyTorch code) with the same random parameters."""
    from mamba_ssm.modules import mamba2
    from mamba_ssm.ops.triton import layernorm_gated

    monkeypatch.setattr(mamba2, "causal_conv1d_update", None)
    monkeypatch.setattr(layernorm_gated, "rmsnorm_fn", functools.partial(layernorm_gated.rms_norm_ref, upcast=False))

    def build(seed: int = 0, **options) -> Pair:
        grouped = options.get("ngroups", 1) > 1
        state_update = mamba_reference.selective_state_update_ref if grouped else None
        monkeypatch.setattr(mamba2, "selective_state_update", state_update)
        torch.manual_seed(seed)
        ours = Mamba2Mixer(D_MODEL, **SIZES, **options)
        with torch.no_grad():
            for parameter in ours.parameters():
                parameter.add_(0.3 * torch.randn_like(parameter))
        oracle = mamba2.Mamba2(D_MODEL, **SIZES, **options)
        oracle.load_state_dict(strip_prefix(ours.state_dict()))
        return ours.double(), oracle.double()

    return build


def strip_prefix(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Our keys `mamba2.<name>` -> mamba-ssm's Mamba2 keys `<name>`."""
    return {key.removeprefix("mamba2."): value for key, value in state_dict.items()}


def random_input(batch: int, length: int, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, length, D_MODEL, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def oracle_steps(oracle: torch.nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, MambaState]:
    """mamba-ssm's Mamba2.step over x (B, L, D) frame by frame: the outputs (B, L, D) and the state after them."""
    conv_state, ssm_state = oracle.allocate_inference_cache(x.size(0), max_seqlen=1)
    outputs: List[torch.Tensor] = []
    with torch.no_grad():
        for t in range(x.size(1)):
            out, conv_state, ssm_state = oracle.step(x[:, t : t + 1], conv_state, ssm_state)
            outputs.append(out)
    return torch.cat(outputs, dim=1), MambaState(conv_state, ssm_state)


def assert_states_close(actual: MambaState, expected: MambaState) -> None:
    torch.testing.assert_close(actual.conv_state, expected.conv_state, **FLOAT64)
    torch.testing.assert_close(actual.ssm_state, expected.ssm_state, **FLOAT64)


@pytest.mark.skipif(load_cuda_kernels().available, reason="with the CUDA kernels mamba-ssm's module holds them")
def test_without_mamba_ssm_the_parameters_are_our_own():
    mixer = Mamba2Mixer(D_MODEL, **SIZES)
    assert isinstance(mixer.mamba2, Mamba2Parameters)


@pytest.mark.parametrize("options", [*CONFIGS.values(), dict(D_has_hdim=True, bias=True, conv_bias=False)],
                         ids=[*CONFIGS, "D per channel, biases"])
def test_state_dict_keys_and_shapes_equal_mamba_ssm(make_pair, options):
    ours, oracle = make_pair(**options)
    shapes = {key.removeprefix("mamba2."): value.shape for key, value in ours.state_dict().items()}
    assert shapes == {key: value.shape for key, value in oracle.state_dict().items()}
    assert all(key.startswith("mamba2.") for key in ours.state_dict())


def test_mamba_ssm_weights_load_into_ours_and_give_its_outputs(make_pair):
    _, oracle = make_pair(seed=0, ngroups=2)
    ours, _ = make_pair(seed=1, ngroups=2)
    ours.load_state_dict({f"mamba2.{key}": value for key, value in oracle.state_dict().items()})
    x = random_input(2, CHUNK + 1)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), oracle_steps(oracle, x)[0], **FLOAT64)


def test_a_mixer_built_on_mamba_ssm_runs_cpu_tensors_on_the_pytorch_path(make_pair, monkeypatch):
    """As on a GPU machine (the kernels import, so mamba-ssm's module holds the parameters) with the model moved to
    CPU: its parameters run through our PyTorch path, which mamba-ssm's fused forward would not do on CPU."""
    from mamba_ssm.modules.mamba2 import Mamba2

    _, oracle = make_pair(ngroups=2)
    monkeypatch.setattr(mamba2_mixer, "load_cuda_kernels", lambda: CudaKernels())
    ours = Mamba2Mixer(D_MODEL, **SIZES, ngroups=2).double()
    assert isinstance(ours.mamba2, Mamba2)
    ours.load_state_dict({f"mamba2.{key}": value for key, value in oracle.state_dict().items()})
    x = random_input(2, CHUNK + 3)
    expected, expected_state = oracle_steps(oracle, x)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), expected, **FLOAT64)
        state = ours.allocate_inference_cache(2)
        steps = [ours.step(x[:, t], state) for t in range(x.size(1))]
    torch.testing.assert_close(torch.stack(steps, dim=1), expected, **FLOAT64)
    assert_states_close(state, expected_state)


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS)
@pytest.mark.parametrize("length", LENGTHS)
def test_forward_and_final_state_equal_mamba_ssm_steps(make_pair, options, length, cpu_backend):
    ours, oracle = make_pair(**options)
    x = random_input(2, length)
    expected, expected_state = oracle_steps(oracle, x)
    with torch.no_grad():
        out, state = ours(x, return_final_state=True)
        torch.testing.assert_close(ours(x), expected, **FLOAT64)
    torch.testing.assert_close(out, expected, **FLOAT64)
    assert_states_close(state, expected_state)


@pytest.mark.parametrize("options", CONFIGS.values(), ids=CONFIGS)
def test_step_equals_mamba_ssm_step(make_pair, options):
    ours, oracle = make_pair(**options)
    x = random_input(3, CHUNK + 3)
    expected, expected_state = oracle_steps(oracle, x)
    state = ours.allocate_inference_cache(3)
    with torch.no_grad():
        steps = [ours.step(x[:, t], state) for t in range(x.size(1))]
    torch.testing.assert_close(torch.stack(steps, dim=1), expected, **FLOAT64)
    assert_states_close(state, expected_state)


def test_float32_forward_equals_the_float64_oracle(make_pair):
    ours, oracle = make_pair(ngroups=2)
    x = random_input(2, 3 * CHUNK + 5)
    expected, expected_state = oracle_steps(oracle, x)
    with torch.no_grad():
        out, state = ours.float()(x.float(), return_final_state=True)
    assert out.dtype == state.conv_state.dtype == state.ssm_state.dtype == torch.float32
    torch.testing.assert_close(out, expected.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state.ssm_state, expected_state.ssm_state.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("ngroups", [1, 2])
def test_padded_batch_equals_each_utterance_alone(make_pair, ngroups):
    ours, _ = make_pair(ngroups=ngroups)
    lengths = [3 * CHUNK + 5, 1, CHUNK + 1]
    x = random_input(3, max(lengths))
    with torch.no_grad():
        batched, batch_state = ours(x, torch.tensor(lengths), return_final_state=True)
        for b, length in enumerate(lengths):
            alone, state = ours(x[b : b + 1, :length], return_final_state=True)
            torch.testing.assert_close(batched[b : b + 1, :length], alone, **FLOAT64)
            assert_states_close(MambaState(batch_state.conv_state[b : b + 1], batch_state.ssm_state[b : b + 1]), state)


def test_decoding_continues_from_the_final_state(make_pair):
    ours, oracle = make_pair(ngroups=2)
    x = random_input(2, 2 * CHUNK + 3)
    expected, expected_state = oracle_steps(oracle, x)
    with torch.no_grad():
        _, state = ours(x[:, :CHUNK + 1], return_final_state=True)
        steps = [ours.step(x[:, t : t + 1], state) for t in range(CHUNK + 1, x.size(1))]
    torch.testing.assert_close(torch.cat(steps, dim=1), expected[:, CHUNK + 1 :], **FLOAT64)
    assert_states_close(state, expected_state)


@pytest.mark.parametrize("sizes", [[1] * 7, [CHUNK + 1, 1, 2 * CHUNK + 3], [3 * CHUNK + 5]], ids=["1s", "mixed", "one"])
def test_chunks_equal_the_whole_forward_and_leave_their_input_state(make_pair, sizes):
    ours, oracle = make_pair(ngroups=2)
    x = random_input(2, sum(sizes))
    expected, expected_state = oracle_steps(oracle, x)
    state, outputs, start = ours.allocate_inference_cache(2), [], 0
    with torch.no_grad():
        for size in sizes:
            before = MambaState(state.conv_state.clone(), state.ssm_state.clone())
            out, next_state = ours.forward_chunk(x[:, start : start + size], state)
            assert_states_close(state, before)
            outputs.append(out)
            state, start = next_state, start + size
    torch.testing.assert_close(torch.cat(outputs, dim=1), expected, **FLOAT64)
    assert_states_close(state, expected_state)


def test_gradients_pass_gradcheck(make_pair):
    ours, _ = make_pair(ngroups=2)
    ours.chunk_size = 3
    # A = -exp(A_log) is computed in float32 whatever the model's dtype, as mamba-ssm does: too coarse for finite
    # differences, so A_log is only required to receive a gradient (below).
    names = ("mamba2.conv1d.weight", "mamba2.conv1d.bias", "mamba2.dt_bias", "mamba2.D", "mamba2.norm.weight")
    parameters = dict(ours.named_parameters())

    def mix(x: torch.Tensor, *values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(ours, dict(zip(names, values)), (x,))

    x = random_input(1, 7).requires_grad_()
    assert torch.autograd.gradcheck(mix, [x, *(parameters[name].detach().clone().requires_grad_() for name in names)])
    gradients = torch.autograd.grad(ours(x).square().sum(), list(parameters.values()))
    assert all(torch.isfinite(grad).all() and grad.abs().sum() > 0 for grad in gradients)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(headdim=12), "d_ssm = 32 must be a multiple of headdim = 12"),
        (dict(d_ssm=48), "at most expand \\* d_model = 32"),
        (dict(ngroups=3), "ngroups = 3 must divide the number of heads 4"),
        (dict(chunk_size=0), "chunk_size must be at least 1"),
        (dict(A_init_range=(0.0, 1.0)), "need 0 < A_init_range"),
    ],
)
def test_sizes_that_do_not_split_into_heads_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        Mamba2Mixer(D_MODEL, **{**SIZES, **options})


@pytest.mark.parametrize("bidirectional", [False, True])
def test_encoder_with_mamba2_mixers_trains_on_cpu(bidirectional):
    torch.manual_seed(0)
    encoder = MambaEncoder(
        20, output_size=32, num_blocks=2, d_state=4, mixer_type="mamba2", bidirectional=bidirectional
    )
    xs = torch.randn(3, 41, 20)
    ilens = torch.tensor([41, 17, 30])
    ys, olens, _ = encoder(xs, ilens)
    assert ys.shape == (3, olens.max(), 32) and torch.isfinite(ys).all()
    ys.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in encoder.parameters())
    encoder.eval()
    with torch.no_grad():
        batched, _, _ = encoder(xs, ilens)
        alone, alone_lens, _ = encoder(xs[1:2, :17], ilens[1:2])
    torch.testing.assert_close(batched[1:2, : alone_lens[0]], alone, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_collect_stats_and_training_through_asr_train_on_cpu(tmp_path):
    """asr.sh's stage 10 (collect-stats, on CPU) then stage 11 (training) for `encoder: mamba` with
    `mixer_type: mamba2`, through ESPnet's unmodified `python -m espnet2.bin.asr_train`."""
    rng = np.random.default_rng(0)
    sentences = {f"utt{i}": " ".join(rng.choice(WORDS, size=2)) for i in range(6)}
    write_tiny_corpus(tmp_path / "train", dict(list(sentences.items())[:4]), rng)
    write_tiny_corpus(tmp_path / "valid", dict(list(sentences.items())[4:]), rng)
    (tmp_path / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    config = yaml.safe_load(CONFORMER_CONFIG.read_text())
    config["encoder"] = "mamba"
    config["encoder_conf"] = {"output_size": 32, "num_blocks": 1, "d_state": 4, "mixer_type": "mamba2"}
    config["decoder_conf"] = {"attention_heads": 2, "linear_units": 32, "num_blocks": 1}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    common = [
        "--config", "config.yaml", "--token_type", "char", "--token_list", "tokens.txt", *corpus_args(Path(".")),
        "--frontend_conf", "n_mels=40", "--ngpu", "0", "--num_workers", "0", "--batch_type", "sorted",
        "--batch_size", "2",
    ]
    run_espnet("espnet2.bin.asr_train", [*common, "--collect_stats", "true", "--output_dir", "stats"], tmp_path)
    stats = tmp_path / "stats" / "train" / "feats_stats.npz"
    assert stats.exists()
    run_espnet(
        "espnet2.bin.asr_train",
        [*common, "--output_dir", "exp", "--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats}",
         "--max_epoch", "1", "--use_amp", "false", "--specaug", "none", "--use_tensorboard", "false"],
        tmp_path,
    )
    assert yaml.safe_load((tmp_path / "exp" / "config.yaml").read_text())["encoder_conf"]["mixer_type"] == "mamba2"
    assert (tmp_path / "exp" / "1epoch.pth").exists()
