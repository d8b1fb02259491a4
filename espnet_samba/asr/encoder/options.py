"""Clear errors for `encoder_conf` keys an encoder does not take (instead of a TypeError from deep inside)."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, List

from espnet2.asr.encoder.conformer_encoder import ConformerEncoder


def accepted_keys(constructor: Callable[..., Any]) -> List[str]:
    """The keyword arguments `constructor` takes by name, without `self`, `input_size` and `**kwargs`."""
    return [
        name
        for name, parameter in inspect.signature(constructor).parameters.items()
        if name not in ("self", "input_size") and parameter.kind is not inspect.Parameter.VAR_KEYWORD
    ]


def reject_unsupported_options(encoder_name: str, constructor: Callable[..., Any], options: Dict[str, Any]) -> None:
    """Raise a ValueError naming `options`, the keys that reached `constructor` through its `**kwargs`.

    Keys the Conformer takes are explained as attention-encoder options; others as unknown.

    Args:
        encoder_name: the name users write in `encoder:` ("mamba", ...).
        constructor: the encoder's `__init__`.
        options: the unsupported keyword arguments it received; nothing happens when empty.
    """
    if not options:
        return
    conformer_keys = set(accepted_keys(ConformerEncoder.__init__))
    attention_keys = sorted(key for key in options if key in conformer_keys)
    unknown_keys = sorted(key for key in options if key not in conformer_keys)
    problems = []
    if attention_keys:
        problems.append(f"{attention_keys} only apply to attention encoders (conformer, transformer, ...)")
    if unknown_keys:
        problems.append(f"{unknown_keys} are unknown (misspelt?)")
    raise ValueError(
        f"encoder: {encoder_name} does not take these encoder_conf keys: {'; '.join(problems)}. "
        f"Remove them from encoder_conf. The keys it accepts are: {', '.join(accepted_keys(constructor))}"
    )
