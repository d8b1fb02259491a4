"""`espnet_samba.ops.mamba_ssm_oracle`: mamba-ssm's reference code imports without its CUDA build and without
HuggingFace transformers (which tools/install.sh leaves out on CPU), and leaves nothing behind. In fresh processes,
so that the test session's own imports do not hide a missing module."""
from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCK_TRANSFORMERS = "import sys; sys.modules['transformers'] = None  # as if not installed: importing it fails\n"


def run_python(code: str, block_transformers: bool = False) -> subprocess.CompletedProcess:
    source = (BLOCK_TRANSFORMERS if block_transformers else "") + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, check=False)


def test_the_reference_modules_import_without_transformers():
    result = run_python("""
        from espnet_samba.ops.mamba_ssm_oracle import enter_reference_packages
        enter_reference_packages()
        from causal_conv1d.causal_conv1d_interface import causal_conv1d_ref, causal_conv1d_update_ref
        from mamba_ssm.modules import mamba2, mamba_simple
        from mamba_ssm.ops.selective_scan_interface import mamba_inner_ref, selective_scan_ref
        from mamba_ssm.ops.triton import layernorm_gated
        from mamba_ssm.ops.triton.selective_state_update import selective_state_update_ref
        print("imported")
    """, block_transformers=True)
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr[-3000:]


def test_without_it_mamba_ssm_needs_transformers():
    """The reason for the module: mamba-ssm's package __init__ imports its generation code, which needs it."""
    result = run_python("""
        import types
        for name in ("selective_scan_cuda", "causal_conv1d_cuda"):
            sys.modules.setdefault(name, types.ModuleType(name))
        import mamba_ssm
    """, block_transformers=True)
    assert result.returncode != 0 and "transformers" in result.stderr, result.stderr[-3000:]


def test_leaving_removes_the_stand_ins_and_the_packages():
    result = run_python("""
        import sys
        from espnet_samba.ops.mamba_ssm_oracle import enter_reference_packages, leave_reference_packages
        before = set(sys.modules)
        stand_ins = enter_reference_packages()
        from mamba_ssm.ops.selective_scan_interface import selective_scan_ref
        leave_reference_packages(before, stand_ins)
        left = [name for name in sys.modules if name.split(".")[0] in ("mamba_ssm", "causal_conv1d", *stand_ins)]
        print("left:", left)
    """)
    assert result.returncode == 0 and "left: []" in result.stdout, result.stdout + result.stderr[-3000:]
