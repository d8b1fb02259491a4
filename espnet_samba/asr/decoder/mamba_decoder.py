"""Samba-ASR's Mamba decoder: token embedding, Mamba blocks conditioned on the audio, LayerNorm, linear output.

The audio reaches the blocks through a cross-connection, chosen by `cross_connection`:

- "prefix" (default; attention-free, the paper's "transformer-free" decoder): each block's Mamba runs over the
  utterance's encoder memory followed by its text, so the audio is absorbed into the recurrent state. At decoding
  time the memory is absorbed once per utterance (`init_state`), after which a token step costs O(1) in both the
  prefix length and the audio length: the per-hypothesis state is a conv and an SSM state per block. The price:
  all audio information has to fit in that fixed-size state (no way to look back at a specific frame), and
  training runs every block over T + U frames instead of U. With `memory_order: reversed` each utterance's frames
  are absorbed last to first, so the start of the audio, which the first tokens depend on, is the freshest in the
  state instead of the oldest: Sutskever et al. (2014, "Sequence to sequence learning with neural networks")
  found that reversing the source this way made LSTM encoder-decoders learn much faster.
- "attention": each block is Mamba over the text, cross-attention to the (length-masked) memory, then a
  feed-forward block; the form used by Mamba decoders in ESPnet-based papers. A token step is O(1) in the prefix
  length but O(T) in the audio length (one query against the memory's keys, projected once per utterance), and
  the state per hypothesis additionally references those keys/values (shared by all hypotheses of an utterance).
  It can re-read any frame, at the cost of attention's parameters and the per-step dot products.

Both forms keep every hypothesis's prefix in a fixed-size recurrent state, unlike ESPnet's Transformer decoder,
whose cache and per-step cost grow with the prefix.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from typeguard import typechecked

from espnet2.asr.decoder.abs_decoder import AbsDecoder
from espnet_samba.asr.checkpoint_check import refuse_mismatched_checkpoints
from espnet_samba.asr.decoder.attention_connection import AttentionCrossConnection
from espnet_samba.asr.decoder.decoder_state import HypothesisState, MambaStackState, batch_memories
from espnet_samba.asr.decoder.prefix_connection import PrefixCrossConnection, check_memory_order
from espnet_samba.asr.decoder.token_embedding import TokenEmbedding
from espnet_samba.compat import BatchScorerInterface
from espnet_samba.modules.normalization import build_norm

CROSS_CONNECTIONS = {"prefix": PrefixCrossConnection, "attention": AttentionCrossConnection}

# Options that only the "attention" cross-connection reads, with the value it uses when they are not given.
ATTENTION_OPTION_DEFAULTS: Dict[str, Any] = {
    "attention_heads": 4,
    "linear_units": 2048,
    "src_attention_dropout_rate": 0.0,
}

# ESPnet Transformer-decoder options that have no counterpart here, and why.
UNSUPPORTED_OPTION_REASONS = {
    "self_attention_dropout_rate": "there is no self-attention: a Mamba mixer runs over the text",
    "concat_after": "there is no self-attention layer to concatenate around",
    "pos_enc_class": "use positional_encoding: sinusoidal | none",
    "layer_drop_rate": "layer drop is not implemented",
    "qk_norm": "the cross-attention has no query/key normalisation option",
    "use_flash_attn": "the cross-attention uses ESPnet's plain MultiHeadedAttention",
    "gradient_checkpoint_layers": "gradient checkpointing is not implemented",
}


class MambaDecoder(AbsDecoder, BatchScorerInterface):
    """Mamba decoder with a Mamba cross-connection to the encoder (Samba-ASR, section 4.3).

    Args:
        vocab_size: output size V (sos/eos included, as ESPnet's ASR model counts it).
        encoder_output_size: size of the encoder output; projected to `d_model` when different.
        cross_connection: "prefix" (attention-free) or "attention"; see the module docstring.
        num_blocks: number of Mamba blocks.
        d_model: the decoder's size D; defaults to `encoder_output_size`.
        d_state, d_conv, expand: the Mamba mixers' state size, convolution width and expansion.
        dropout_rate: dropout on every residual branch.
        positional_dropout_rate: dropout after the token embedding.
        positional_encoding: "sinusoidal" (ESPnet's absolute encoding, as the paper) or "none".
        input_layer: "embed" (token ids).
        use_output_layer: end with the linear projection to V; without it `forward` returns the normalised
            hidden states (B, U, D) and the decoder cannot score tokens.
        normalize_before: pre-norm blocks and a final normalisation, as ESPnet's key; only True exists.
        norm_type: "layer_norm" or "rms_norm", in the blocks and at the end.
        attention_heads, linear_units, src_attention_dropout_rate: cross-attention heads, feed-forward size and
            attention-weight dropout; cross_connection "attention" only (defaults 4, 2048, 0.0).
        memory_order: "forward" or "reversed": the order in which cross_connection "prefix" reads each utterance's
            encoder frames (see the module docstring); the same parameters serve both orders. Cross-connection
            "attention" takes only "forward", its default.
        unsupported: any other key raises a ValueError that names it.
    """

    @typechecked
    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        cross_connection: str = "prefix",
        num_blocks: int = 6,
        d_model: Optional[int] = None,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dropout_rate: float = 0.1,
        positional_dropout_rate: float = 0.1,
        positional_encoding: str = "sinusoidal",
        input_layer: str = "embed",
        use_output_layer: bool = True,
        normalize_before: bool = True,
        norm_type: str = "layer_norm",
        attention_heads: Optional[int] = None,
        linear_units: Optional[int] = None,
        src_attention_dropout_rate: Optional[float] = None,
        memory_order: str = "forward",
        **unsupported: Any,
    ) -> None:
        super().__init__()
        refuse_mismatched_checkpoints(self)
        _check_options(cross_connection, num_blocks, input_layer, normalize_before, memory_order, unsupported)
        attention_options = {
            "attention_heads": attention_heads,
            "linear_units": linear_units,
            "src_attention_dropout_rate": src_attention_dropout_rate,
        }
        d_model = encoder_output_size if d_model is None else d_model
        self.sos = self.eos = vocab_size - 1
        self.embed = TokenEmbedding(vocab_size, d_model, positional_encoding, positional_dropout_rate)
        self.memory_projection = (
            nn.Identity() if d_model == encoder_output_size else nn.Linear(encoder_output_size, d_model)
        )
        self.decoders = CROSS_CONNECTIONS[cross_connection](
            num_blocks, d_model, d_state=d_state, d_conv=d_conv, expand=expand, dropout_rate=dropout_rate,
            norm_type=norm_type, **_attention_options(cross_connection, attention_options),
            **_prefix_options(cross_connection, memory_order),
        )
        self.after_norm = build_norm(norm_type, d_model)
        self.output_layer = nn.Linear(d_model, vocab_size) if use_output_layer else None

    def forward(
        self, hs_pad: torch.Tensor, hlens: torch.Tensor, ys_in_pad: torch.Tensor, ys_in_lens: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced decoding of a padded batch.

        Args:
            hs_pad: encoder output (B, T, encoder_output_size).
            hlens: encoder output lengths (B,).
            ys_in_pad: input token ids, sos first (B, U).
            ys_in_lens: their lengths (B,).

        Returns:
            logits (B, U, V) (hidden states (B, U, D) without an output layer), and ys_in_lens.
        """
        text = self.embed(ys_in_pad)
        memory = self.memory_projection(hs_pad)
        x = self.after_norm(self.decoders(text, ys_in_lens, memory, hlens))
        if self.output_layer is not None:
            x = self.output_layer(x)
        return x, ys_in_lens

    def init_states(self, memory: torch.Tensor, memory_lengths: torch.Tensor) -> List[HypothesisState]:
        """Absorb a padded batch of utterances' encoder outputs: the states before any token.

        Args:
            memory: encoder output (B, T, encoder_output_size).
            memory_lengths: (B,).

        Returns:
            One state per utterance (batch 1 each).
        """
        stack_state, attention_memory = self.decoders.absorb_memory(self.memory_projection(memory), memory_lengths)
        return [
            HypothesisState(
                stack_state.row(b), position=0, memory=None if attention_memory is None else attention_memory.row(b)
            )
            for b in range(memory.size(0))
        ]

    def init_state(self, x: torch.Tensor) -> HypothesisState:
        """The state of the empty prefix for one utterance's encoder output x (T, encoder_output_size).

        This is where the audio is read (absorbed into the recurrent state, or projected into the cross-attention's
        keys/values), once per utterance; `batch_score` then never reads the encoder output again.
        """
        return self.init_states(x[None], torch.tensor([x.size(0)], device=x.device))[0]

    def batch_init_state(self, x: torch.Tensor) -> HypothesisState:
        """Same as `init_state`: one utterance x (T, D); ESPnet's BatchBeamSearch stores it per hypothesis."""
        return self.init_state(x)

    def score(
        self,
        ys: torch.Tensor,
        state: Optional[HypothesisState],
        x: torch.Tensor,
        pre_x: Optional[torch.Tensor] = None,
        return_hs: bool = False,
    ) -> Tuple[Any, ...]:
        """Score the next token of one prefix (ESPnet's `BeamSearch`).

        Args:
            ys: prefix token ids, sos first (L,).
            state: the state after ys[:-1] (or earlier; see `batch_score`), or None to start from x.
            x: the utterance's encoder output (T, encoder_output_size); read only when state is None.
            pre_x, return_hs: as in `batch_score`.

        Returns:
            log-probabilities of the next token (V,), and the state after ys; with `return_hs`, (log-probabilities,
            hidden state (1, D), state), in the order of ESPnet's `TransformerDecoder.score`.
        """
        scored, states = self.batch_score(
            ys[None], [state], x[None], None if pre_x is None else pre_x[None], return_hs=return_hs
        )
        if return_hs:
            logp, hidden = scored
            return logp[0], hidden, states[0]
        return scored[0], states[0]

    def batch_score(
        self,
        ys: torch.Tensor,
        states: List[Optional[HypothesisState]],
        xs: torch.Tensor,
        pre_x: Optional[torch.Tensor] = None,
        return_hs: bool = False,
    ) -> Tuple[Any, List[HypothesisState]]:
        """Score the next token of N prefixes, advancing each hypothesis's own state by its own tokens.

        A state that has consumed p tokens is advanced by ys[:, p:], normally just the newest token ys[:, -1]
        (one constant-cost step); a longer catch-up serves multi-token primers. The states given are not
        modified: hypotheses that share a parent state are independent.

        Args:
            ys: prefixes, sos first (N, L), all of length L as in ESPnet's BatchBeamSearch.
            states: per-hypothesis states from `init_state` or earlier calls, all having consumed the same number
                of tokens; None entries are started from their row of xs.
            xs: encoder output (N, T, encoder_output_size); read only for None states.
            pre_x: what ESPnet's beam search passes a "decoder" scorer for sequential attention over two sources
                (a multi-decoder model's ST decoder attends to pre_x, then to xs); refused, since this decoder
                reads one encoder output.
            return_hs: also return the hidden states, as ESPnet's `return_hs` beam search asks of a "decoder".

        Returns:
            log-probabilities (N, V) of the token after each prefix, and the new per-hypothesis states; with
            `return_hs`, ((log-probabilities, hidden states (N, D)), states), as ESPnet's
            `TransformerDecoder.batch_score`: the normalised decoder output at the last position, the output
            layer's input.
        """
        if pre_x is not None:
            raise ValueError(
                "MambaDecoder reads one encoder output: it cannot take ESPnet's pre_x (sequential attention over "
                "a second source, as a multi-decoder model's decoder does)"
            )
        if self.output_layer is None:
            raise ValueError("this MambaDecoder was built with use_output_layer=False, so it cannot score tokens")
        states = [self.init_state(xs[b]) if s is None else s for b, s in enumerate(states)]
        position = _common_position(states, ys.size(1))
        stack_state = MambaStackState.concat([s.mamba for s in states])
        attention_memory = batch_memories(states)
        for t in range(position, ys.size(1)):
            positions = torch.full((ys.size(0),), t, dtype=torch.long, device=ys.device)
            x = self.embed(ys[:, t : t + 1], positions)[:, 0]
            x = self.decoders.step(x, stack_state, attention_memory)
        hidden = self.after_norm(x)
        logp = torch.log_softmax(self.output_layer(hidden), dim=-1)
        new_states = [
            HypothesisState(stack_state.row(b), position=ys.size(1), memory=s.memory) for b, s in enumerate(states)
        ]
        return ((logp, hidden) if return_hs else logp), new_states


def _common_position(states: List[HypothesisState], prefix_length: int) -> int:
    """The number of tokens every state has consumed; it must be shared and leave at least one token to read."""
    positions = {s.position for s in states}
    if len(positions) != 1:
        raise ValueError(
            f"batch_score got hypothesis states at different positions {sorted(positions)}; score prefixes that "
            "have consumed the same number of tokens together"
        )
    position = positions.pop()
    if position >= prefix_length:
        raise ValueError(
            f"the states have already consumed {position} tokens, but the prefixes have only {prefix_length}: "
            "pass each state with the prefix it was computed for, extended by the new token"
        )
    return position


def _check_options(
    cross_connection: str,
    num_blocks: int,
    input_layer: str,
    normalize_before: bool,
    memory_order: str,
    unsupported: Dict[str, Any],
) -> None:
    """Raise a ValueError naming every option MambaDecoder cannot honour."""
    if unsupported:
        reasons = "; ".join(
            f"{key} ({UNSUPPORTED_OPTION_REASONS.get(key, 'unknown option')})" for key in sorted(unsupported)
        )
        raise ValueError(f"MambaDecoder does not accept decoder_conf key(s): {reasons}")
    if cross_connection not in CROSS_CONNECTIONS:
        raise ValueError(f"cross_connection must be one of {sorted(CROSS_CONNECTIONS)}, got {cross_connection!r}")
    check_memory_order(memory_order)
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be at least 1, got {num_blocks}")
    if input_layer != "embed":
        raise ValueError(f"MambaDecoder reads token ids: input_layer must be 'embed', got {input_layer!r}")
    if not normalize_before:
        raise ValueError(
            "MambaDecoder's blocks are pre-norm with a final normalisation: normalize_before must be true"
        )


def _attention_options(cross_connection: str, given: Dict[str, Any]) -> Dict[str, Any]:
    """The cross-attention options to build `cross_connection` with; given ones must be used by it."""
    if cross_connection == "attention":
        return {key: ATTENTION_OPTION_DEFAULTS[key] if value is None else value for key, value in given.items()}
    set_keys = sorted(key for key, value in given.items() if value is not None)
    if set_keys:
        raise ValueError(
            f"decoder_conf key(s) {set_keys} only apply to cross_connection: attention, "
            f"not {cross_connection!r}; remove them"
        )
    return {}


def _prefix_options(cross_connection: str, memory_order: str) -> Dict[str, Any]:
    """The options to build `cross_connection` with that only "prefix" reads; a reversed order elsewhere is refused,
    since the cross-attention reads any frame in any order and has no order to reverse."""
    if cross_connection == "prefix":
        return {"memory_order": memory_order}
    if memory_order != "forward":
        raise ValueError(
            f"decoder_conf key memory_order: {memory_order} only applies to cross_connection: prefix, not "
            f"{cross_connection!r} (the cross-attention reads any frame in any order); remove it"
        )
    return {}
