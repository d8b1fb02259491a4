"""The ESPnet internals we build on that live in ESPnet's older `espnet` package tree, imported in one place.

ESPnet's plugin-facing API is `espnet2` (`AbsEncoder`, `AbsDecoder`, `CTC`, `ASRTask`, ...), imported where it
is used. The layers, masks, beam search and command-line helpers below still live under `espnet.nets` /
`espnet.utils`, which ESPnet is retiring: espnet/espnet PR #6179 (open when this was written) moves them to
`espnet2.legacy`. When an ESPnet release moves them, this module is the one to change, together with the tested
range in setup.py. Tested with ESPnet 202511 (setup.py says which releases are declared).
"""
from espnet.nets.batch_beam_search import BatchBeamSearch
from espnet.nets.batch_beam_search_online_sim import BatchBeamSearchOnlineSim
from espnet.nets.ctc_prefix_score import CTCPrefixScoreTH
from espnet.nets.beam_search import BeamSearch, Hypothesis
from espnet.nets.pytorch_backend.conformer.encoder_layer import EncoderLayer
from espnet.nets.pytorch_backend.nets_utils import make_pad_mask
from espnet.nets.pytorch_backend.transformer.attention import MultiHeadedAttention, RelPositionMultiHeadedAttention
from espnet.nets.pytorch_backend.transformer.embedding import RelPositionalEncoding
from espnet.nets.pytorch_backend.transformer.layer_norm import LayerNorm
from espnet.nets.pytorch_backend.transformer.positionwise_feed_forward import PositionwiseFeedForward
from espnet.nets.pytorch_backend.transformer.subsampling import (
    Conv2dSubsampling,
    Conv2dSubsampling1,
    Conv2dSubsampling2,
    Conv2dSubsampling6,
    Conv2dSubsampling8,
    TooShortUttError,
    check_short_utt,
)
from espnet.nets.scorer_interface import BatchScorerInterface
from espnet.nets.scorers.ctc import CTCPrefixScorer
from espnet.nets.scorers.length_bonus import LengthBonus
from espnet.utils.cli_utils import get_commandline_args

__all__ = [
    "BatchBeamSearch",
    "BatchBeamSearchOnlineSim",
    "BatchScorerInterface",
    "BeamSearch",
    "CTCPrefixScoreTH",
    "CTCPrefixScorer",
    "Conv2dSubsampling",
    "Conv2dSubsampling1",
    "Conv2dSubsampling2",
    "Conv2dSubsampling6",
    "Conv2dSubsampling8",
    "EncoderLayer",
    "Hypothesis",
    "LayerNorm",
    "LengthBonus",
    "MultiHeadedAttention",
    "PositionwiseFeedForward",
    "RelPositionMultiHeadedAttention",
    "RelPositionalEncoding",
    "TooShortUttError",
    "check_short_utt",
    "get_commandline_args",
    "make_pad_mask",
]
