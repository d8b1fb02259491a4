"""Support for tests that need an ESPnet ASR experiment config (no tests here): ESPnet's own training entry point
with --dry_run writes the config.yaml of a tiny model, as `python -m espnet2.bin.asr_train` would."""
from pathlib import Path
from typing import Sequence, Tuple

import espnet_samba

FRONTEND = "{'n_fft': 256, 'hop_length': 128, 'n_mels': 20}"
TINY_TRANSFORMER_ENCODER = (
    "transformer", "{'output_size': 16, 'attention_heads': 2, 'linear_units': 32, 'num_blocks': 1}"
)


def write_asr_config(
    output_dir: Path,
    token_list: Path,
    encoder: Tuple[str, str],
    decoder: Tuple[str, str],
    options: Sequence[str] = (),
) -> Path:
    """`output_dir/config.yaml` of a model on raw audio (20 mel bins) and char tokens; `encoder` and `decoder` are
    (name, conf) as in `--encoder NAME --encoder_conf CONF`; `options` are further asr_train options."""
    from espnet2.tasks.asr import ASRTask

    espnet_samba.register()
    ASRTask.main(
        cmd=[
            "--dry_run", "true",
            "--output_dir", str(output_dir),
            "--token_list", str(token_list),
            "--token_type", "char",
            "--frontend_conf", FRONTEND,
            "--encoder", encoder[0], "--encoder_conf", encoder[1],
            "--decoder", decoder[0], "--decoder_conf", decoder[1],
            *options,
        ]
    )
    return output_dir / "config.yaml"
