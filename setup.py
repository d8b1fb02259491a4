"""espnet-samba: Samba-ASR (Mamba encoder + Mamba cross-connected decoder) as an ESPnet plugin."""
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

AUTOREGISTER_PTH = "espnet_samba_autoregister.pth"


class BuildPyWithAutoregister(build_py):
    """Also place the start-up hook `espnet_samba_autoregister.pth` at the root of site-packages.

    A regular wheel takes build_lib's root into site-packages; an editable wheel (`pip install -e`) takes the
    root of the unpacked wheel, which setuptools names as the install command's `install_lib`. See
    espnet_samba/registration.py for why the hook exists.
    """

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            target_dir = self.get_finalized_command("install").install_lib
        else:
            target_dir = self.build_lib
        self.copy_file(AUTOREGISTER_PTH, os.path.join(target_dir, AUTOREGISTER_PTH))


setup(
    name="espnet-samba",
    version="0.1.0",
    description="Samba-ASR: Mamba state-space encoder and decoder for ESPnet's ASR task",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    cmdclass={"build_py": BuildPyWithAutoregister},
    packages=find_packages(include=["espnet_samba", "espnet_samba.*"]),
    # The fused CPU kernels are compiled from these sources on the user's machine (espnet_samba/ops/cpu_kernels.py).
    package_data={"espnet_samba.ops": ["csrc/*.cpp", "csrc/*.h"]},
    # Ranges of the releases the code has been tested with, not guesses beyond them. tools/install.sh installs
    # torch 2.11.0 and, through this range, ESPnet 202511: the set the test suite and CI run on.
    install_requires=[
        # ESPnet 202511, and 202509 under the registration, encoder, decoder, beam-search, checkpoint, init and
        # quantisation tests; no release lies between them. The ESPnet internals we import are in
        # espnet_samba/compat.py, the one file to change when a release moves them.
        "espnet>=202509,<=202511",
        # torch 2.11 only: no other torch has been tested (this machine has torch 2.13 but no torchaudio for it).
        "torch>=2.11,<2.12",
        "torchaudio>=2.11,<2.12",
        "kaldiio>=2.18",
        "sentencepiece>=0.1.99",
        "humanfriendly>=10.0",
        "pyyaml>=6.0",
        # Recipes: training curves (ESPnet's images/), scoring with the Open ASR Leaderboard normaliser.
        "matplotlib>=3.7",
        # ESPnet's trainer writes tensorboard logs unless a config sets use_tensorboard: false.
        "tensorboard>=2.14",
        "whisper-normalizer==0.1.15",
        # Builds the fused CPU kernels with torch.utils.cpp_extension (plus the system's C++ compiler).
        "ninja>=1.11",
        # Every ESPnet process imports inflect at start (espnet2.text.phoneme_tokenizer -> g2p_en, which spells
        # numbers with it). From 7.0 on, inflect decorates its methods with typeguard's @typechecked, which
        # re-parses and compiles its whole module once per method (23 at import): about 2 s of every start of
        # asr_train, asr_inference or Speech2Text (bench/bench_startup.py). 5.6 is the last release without it.
        "inflect>=5.6,<6",
    ],
    extras_require={
        # CUDA kernels: source-only packages that need torch at build time, so they are built by
        # tools/install.sh (`pip install --no-build-isolation`), not resolved from here.
        "cuda": ["mamba-ssm==2.3.2.post1", "causal-conv1d==1.7.0"],
        # loralib: ESPnet's LoRA adapters (use_adapter), whose partial checkpoints test_checkpoint_mismatch loads.
        "test": ["pytest>=8", "loralib==0.1.2"],
        # mambapy's parallel scan is the CPU baseline of bench/bench_mixer.py.
        "bench": ["mambapy==1.2.0"],
        # The demo corpus's unseen synthesizer (egs2/espeak_en): SVOX Pico with its English voices, built from source.
        "recipes": ["ttspico==0.3.2"],
    },
)
