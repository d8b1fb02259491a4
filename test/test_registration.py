"""`encoder: mamba` / `decoder: mamba` resolve in ESPnet's unmodified entry points, with no import by the user."""
import subprocess
import sys

import pytest


def run_python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)


def test_startup_hook_imports_neither_torch_nor_espnet():
    result = run_python(
        "-c",
        "import sys; from espnet_samba.autoregister import RegisterOnImport; "
        "print(any(isinstance(f, RegisterOnImport) for f in sys.meta_path), "
        "'torch' in sys.modules, 'espnet2' in sys.modules)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "False", "False"]


def test_importing_espnet_asr_task_registers_our_models():
    result = run_python(
        "-c",
        "from espnet2.tasks.asr import encoder_choices, decoder_choices; "
        "print(encoder_choices.get_class('mamba').__name__, encoder_choices.get_class('speech_mamba').__name__, "
        "decoder_choices.get_class('mamba').__name__)",
    )
    assert result.returncode == 0, result.stderr
    # ESPnet's import prints nltk download notices on an offline machine: read our line, the last one.
    assert result.stdout.strip().splitlines()[-1].split() == ["MambaEncoder", "SpeechMambaEncoder", "MambaDecoder"]


@pytest.mark.parametrize("entry_point", ["espnet2.bin.asr_train"])
def test_espnet_cli_help_lists_mamba(entry_point):
    result = run_python("-m", entry_point, "--help")
    assert result.returncode == 0, result.stderr
    help_text = " ".join(result.stdout.split())
    assert "--encoder {" in help_text and "mamba" in help_text.split("--encoder {", 1)[1].split("}", 1)[0]
    assert "speech_mamba" in help_text.split("--encoder {", 1)[1].split("}", 1)[0]
    assert "mamba" in help_text.split("--decoder {", 1)[1].split("}", 1)[0]


def test_explicit_register_is_idempotent():
    import espnet_samba
    from espnet2.tasks.asr import encoder_choices

    espnet_samba.register()
    first = encoder_choices.classes["mamba"]
    espnet_samba.register()
    assert encoder_choices.classes["mamba"] is first
