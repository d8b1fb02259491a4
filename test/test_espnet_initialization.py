"""ESPnet's `init:` schemes keep the Mamba parameters' own initialisation (espnet2.torch_utils.initialize)."""
from __future__ import annotations

import math
from typing import List

import pytest
import torch
from espnet2.torch_utils.initialize import initialize

from espnet_samba.asr.decoder.mamba_decoder import MambaDecoder
from espnet_samba.asr.encoder.mamba_encoder import MambaEncoder
from espnet_samba.modules.mamba2_mixer import Mamba2Mixer
from espnet_samba.modules.mamba_mixer import MambaMixer
from espnet_samba.modules.normalization import RMSNorm

INIT_SCHEMES = ("chainer", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "normal")
DT_MIN, DT_MAX = 0.001, 0.1  # MambaMixer's and Mamba2Mixer's defaults, as mamba-ssm's
A_INIT_RANGE = (1.0, 16.0)  # Mamba2Mixer's default, as mamba-ssm's


def assert_mamba_initialisation(mixer: MambaMixer) -> None:
    """A_log S4D-real, D ones, dt_proj weight within +-dt_rank^-1/2, step sizes spread over [dt_min, dt_max]."""
    states = torch.log(torch.arange(1, mixer.d_state + 1, dtype=torch.float32)).repeat(mixer.d_inner, 1)
    torch.testing.assert_close(mixer.A_log.detach(), states, rtol=0, atol=0)
    torch.testing.assert_close(mixer.D.detach(), torch.ones(mixer.d_inner), rtol=0, atol=0)
    assert mixer.dt_proj.weight.abs().max() <= mixer.dt_rank**-0.5
    step_sizes = torch.nn.functional.softplus(mixer.dt_proj.bias.detach())
    assert DT_MIN * 0.999 <= step_sizes.min() and step_sizes.max() <= DT_MAX * 1.001
    # Log-uniform over two decades: a spread, not one step size for every channel.
    assert step_sizes.log().std() > 0.5 * (math.log(DT_MAX) - math.log(DT_MIN)) / math.sqrt(12)


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_every_init_scheme_keeps_the_mixers_state_space_initialisation(scheme):
    torch.manual_seed(0)
    encoder = MambaEncoder(20, output_size=32, num_blocks=2, d_state=8, input_layer="conv2d", norm_type="rms_norm")
    decoder = MambaDecoder(30, 32, num_blocks=1, d_state=8)
    model = torch.nn.ModuleDict({"encoder": encoder, "decoder": decoder})
    projection_before = next(m for m in model.modules() if isinstance(m, MambaMixer)).in_proj.weight.clone()
    initialize(model, scheme)
    mixers = [module for module in model.modules() if isinstance(module, MambaMixer)]
    assert len(mixers) >= 3
    for mixer in mixers:
        assert_mamba_initialisation(mixer)
    assert not torch.equal(mixers[0].in_proj.weight, projection_before), "the scheme still initialises the rest"
    for norm in (module for module in model.modules() if isinstance(module, RMSNorm)):
        torch.testing.assert_close(norm.weight.detach(), torch.ones_like(norm.weight), rtol=0, atol=0)


def test_a_fresh_mixer_has_the_same_initialisation():
    assert_mamba_initialisation(MambaMixer(32, d_state=8))


def assert_mamba2_initialisation(mixers: List[Mamba2Mixer]) -> None:
    """Over all heads of `mixers`: -A in A_init_range, step sizes in [dt_min, dt_max], both spread; D and the
    norm's gain ones."""
    decays = torch.cat([mixer.mamba2.A_log.detach().exp() for mixer in mixers])
    step_sizes = torch.cat([torch.nn.functional.softplus(mixer.mamba2.dt_bias.detach()) for mixer in mixers])
    assert A_INIT_RANGE[0] <= decays.min() and decays.max() <= A_INIT_RANGE[1] and decays.std() > 1.0
    assert DT_MIN * 0.999 <= step_sizes.min() and step_sizes.max() <= DT_MAX * 1.001 and step_sizes.log().std() > 0.3
    for mixer in mixers:
        torch.testing.assert_close(mixer.mamba2.D.detach(), torch.ones(mixer.nheads), rtol=0, atol=0)
        torch.testing.assert_close(mixer.mamba2.norm.weight.detach(), torch.ones(mixer.d_ssm), rtol=0, atol=0)


@pytest.mark.parametrize("scheme", INIT_SCHEMES)
def test_every_init_scheme_keeps_the_mamba2_state_space_initialisation(scheme):
    torch.manual_seed(0)
    encoder = MambaEncoder(20, output_size=64, num_blocks=2, d_state=8, mixer_type="mamba2", bidirectional=True)
    mixers = [module for module in encoder.modules() if isinstance(module, Mamba2Mixer)]
    projection_before = mixers[0].mamba2.in_proj.weight.clone()
    initialize(encoder, scheme)
    assert len(mixers) == 4 and all(mixer.nheads == 2 for mixer in mixers)
    assert_mamba2_initialisation(mixers)
    assert not torch.equal(mixers[0].mamba2.in_proj.weight, projection_before), "the scheme still initialises the rest"


def test_a_fresh_mamba2_mixer_has_the_same_initialisation():
    torch.manual_seed(0)
    assert_mamba2_initialisation([Mamba2Mixer(64, d_state=8, headdim=16)])
