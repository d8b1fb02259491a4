"""MambaBlock, the normalisation layers and the mixer factory."""
import pytest
import torch

from espnet_samba.modules.mamba_block import MambaBlock, build_mixer
from espnet_samba.modules.normalization import RMSNorm, build_norm


@pytest.mark.parametrize("mixer_type, d_model", [("mamba", 16), ("mamba2", 32)])  # mamba2: one head of 64
@pytest.mark.parametrize("norm_type", ["layer_norm", "rms_norm"])
def test_block_forward_step_and_final_state_agree(norm_type, mixer_type, d_model):
    torch.manual_seed(0)
    block = MambaBlock(d_model, d_state=4, norm_type=norm_type, mixer_type=mixer_type).double()
    x = torch.randn(3, 9, d_model, dtype=torch.float64)
    full, final_state = block(x, return_final_state=True)
    state = block.mixer.allocate_inference_cache(3)
    stepped = torch.stack([block.step(x[:, t], state) for t in range(9)], dim=1)
    torch.testing.assert_close(stepped, full)
    torch.testing.assert_close(state.ssm_state, final_state.ssm_state.double())
    torch.testing.assert_close(state.conv_state, final_state.conv_state)


def test_block_is_residual_and_trains():
    block = MambaBlock(8, d_state=2, dropout_rate=0.1)
    x = torch.randn(2, 5, 8, requires_grad=True)
    block(x).sum().backward()
    assert all(p.grad is not None for p in block.parameters())
    block.eval()
    with torch.no_grad():
        for parameter in block.mixer.out_proj.parameters():
            parameter.zero_()
    torch.testing.assert_close(block(x), x)


def test_rms_norm_normalises_root_mean_square():
    norm = RMSNorm(32)
    y = norm(torch.randn(4, 32) * 7 + 3)
    torch.testing.assert_close(y.pow(2).mean(-1), torch.ones(4), atol=1e-3, rtol=1e-3)


def test_unknown_names_raise_clear_errors():
    with pytest.raises(ValueError, match="norm_type must be one of"):
        build_norm("batch_norm", 8)
    with pytest.raises(ValueError, match="mixer_type must be one of"):
        build_mixer("mamba3", 8, 16, 4, 2)
