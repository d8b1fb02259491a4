"""ESPnet's `espnet.*` internals (the ESPnet1 tree, moving to `espnet2.legacy` upstream) are imported in one place,
espnet_samba/compat.py, so a release that moves them needs one change."""
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "espnet_samba"
LEGACY_IMPORT = re.compile(r"^\s*(from espnet\.|import espnet\.|from espnet import|import espnet$)", re.MULTILINE)


def test_only_the_compat_module_imports_espnet_internals():
    offenders = [
        str(path.relative_to(PACKAGE.parent))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "compat.py" and LEGACY_IMPORT.search(path.read_text())
    ]
    assert offenders == [], f"import these through espnet_samba.compat: {offenders}"
