"""Refuse a checkpoint whose parameters do not fit our encoder or decoder; let ESPnet's partial checkpoints load.

ESPnet loads a model file with `load_state_dict(strict=False)` (`AbsTask.build_model_from_file`, used by
`asr_inference`, `Speech2Text` and packing), so a checkpoint of another architecture, or of the same one at
another size, leaves the missing parameters at their random initial values without a word and decoding
produces garbage. A module's load hook cannot tell that load from a strict one: torch hands every module's
hooks `strict=True` and only the entries under the module's prefix, whatever the caller passed. So the check
decides from what the checkpoint holds for the module, and messages it adds to `error_msgs` are raised whatever
`strict` is.

ESPnet also writes partial checkpoints on purpose, under `use_adapter` (`--save_strategy`): `adapter_only`
keeps the adapter parameters alone (LoRA's, named `lora_*`, loralib's `lora_state_dict`; Houlsby's, named
`*adapter*`), `required_grad_only` leaves out the parameters the training held frozen. It loads them over a
model whose other parameters are already in place (`--resume`, after `--init_param` and `freeze_param`), or
over the freshly built model in `build_model_from_file`. Those two shapes load:

- every entry given is an adapter parameter (or none is given): the module's other parameters keep their values;
- every entry left out is a parameter the module holds frozen (requires_grad False).

Anything else is refused: entries the module does not have (another architecture, or adapters without
`use_adapter`), and left-out parameters that the module trains (another size, or a partial checkpoint loaded
where nothing put the rest in place).
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Set

import torch

EXAMPLES = 3
# How ESPnet's save_strategy adapter_only picks the adapter parameters out of a model's state_dict.
ADAPTER_NAME_MARKS = ("lora_", "adapter")


def _examples(keys: List[str]) -> str:
    return ", ".join(repr(k) for k in keys[:EXAMPLES]) + (", ..." if len(keys) > EXAMPLES else "")


def _is_adapter_entry(key: str) -> bool:
    return any(mark in key for mark in ADAPTER_NAME_MARKS)


def _frozen_parameters(module: torch.nn.Module, prefix: str) -> Set[str]:
    return {prefix + name for name, parameter in module.named_parameters() if not parameter.requires_grad}


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
    and the ones it has that `module` does not, naming both and the fix; see the module docstring for the
    partial checkpoints that pass. (`strict` is always True here; torch applies the caller's after the hooks.)"""
    expected = {prefix + name for name in module.state_dict()}
    given = {key for key in state_dict if key.startswith(prefix)}
    missing, unknown = sorted(expected - given), sorted(given - expected)
    if not missing and not unknown:
        return
    if not unknown:
        if all(_is_adapter_entry(key) for key in given):
            held = "only adapter parameters" if given else "no parameters"
            logging.warning(
                f"the checkpoint holds {held} of {type(module).__name__} at '{prefix}' (as ESPnet's save_strategy "
                f"adapter_only writes): its other {len(missing)} parameters keep their current values, the right "
                "ones when resuming after --init_param, random ones in a model just built from its config"
            )
            return
        if set(missing) <= _frozen_parameters(module, prefix):
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
