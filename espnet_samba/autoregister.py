"""Start-up import hook that calls `espnet_samba.register()` right after `espnet2.tasks.asr` is imported.

Executed from `espnet_samba_autoregister.pth` at interpreter start-up, so it must stay cheap: it imports only the
standard library and does nothing until `espnet2.tasks.asr` is imported. See `espnet_samba.registration` for why
ESPnet needs this.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType
from typing import Optional, Sequence

TRIGGER_MODULE = "espnet2.tasks.asr"


class _RegisterAfterExec(importlib.abc.Loader):
    """Wraps the real loader of the trigger module and registers our classes once it has executed."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Optional[ModuleType]:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        # A broken plugin must not take ESPnet's own models down with it: warn, and leave ESPnet usable.
        try:
            from espnet_samba.registration import register

            register()
        except Exception as error:  # noqa: BLE001 - any failure here is reported, never fatal
            warnings.warn(
                f"espnet-samba could not register its models into ESPnet ({type(error).__name__}: {error}); "
                "`encoder: mamba` / `decoder: mamba` are unavailable in this process. "
                "Run `python -c 'import espnet_samba; espnet_samba.register()'` to see the full error.",
                RuntimeWarning,
                stacklevel=2,
            )


class RegisterOnImport(importlib.abc.MetaPathFinder):
    """Meta path finder that only reacts to `espnet2.tasks.asr`; every other import passes through untouched."""

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]], target: Optional[ModuleType] = None
    ) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname != TRIGGER_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisterAfterExec(spec.loader)
        return spec


def install() -> None:
    """Add the finder to `sys.meta_path` once (the .pth file calls this)."""
    if not any(isinstance(finder, RegisterOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, RegisterOnImport())
