"""Refuse a checkpoint whose parameters do not fit our encoder or decoder.

ESPnet loads a model file with `load_state_dict(strict=False)` (`AbsTask.build_model_from_file`, used by
`asr_inference`, `Speech2Text` and packing), so a checkpoint of another architecture, or of the same one at
another size, leaves the missing parameters at their random initial values without a word and decoding
produces garbage. Messages that a module's load hook adds to `error_msgs` are raised whatever `strict` is.
"""
from __future__ import annotations

from typing import Any, Dict, List

import torch

EXAMPLES = 3


def _examples(keys: List[str]) -> str:
    return ", ".join(repr(k) for k in keys[:EXAMPLES]) + (", ..." if len(keys) > EXAMPLES else "")


def check_checkpoint_fits(
    module: torch.nn.Module,
    state_dict: Dict[str, Any],
    prefix: str,
    local_metadata: Dict[str, Any],
    strict: bool,
    missing_keys: List[str],
    unexpected_keys: List[str],
    error_msgs: List[str],
) -> None:
    """`load_state_dict` pre-hook: report the parameters of `module` (under `prefix`) that `state_dict` lacks
    and the ones it has that `module` does not, naming both and the fix."""
    expected = {prefix + name for name in module.state_dict()}
    given = {key for key in state_dict if key.startswith(prefix)}
    missing, unknown = sorted(expected - given), sorted(given - expected)
    if not missing and not unknown:
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} of its {len(expected)} parameters are missing ({_examples(missing)})")
    if unknown:
        parts.append(f"{len(unknown)} parameters it does not have are given ({_examples(unknown)})")
    error_msgs.append(
        f"the checkpoint does not fit {type(module).__name__} at '{prefix}': {' and '.join(parts)}. It was "
        "trained with another architecture or size: load it with the config it was trained with (config.yaml "
        "beside it in exp/asr_*), or start from its matching parts with --init_param and --ignore_init_mismatch."
    )


def refuse_mismatched_checkpoints(module: torch.nn.Module) -> None:
    """Make `module.load_state_dict` (also as part of a larger model) fail on a checkpoint that does not fit."""
    module.register_load_state_dict_pre_hook(check_checkpoint_fits)
