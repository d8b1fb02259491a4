"""The speech synthesizers that read the corpus, behind one interface.

Four families of English text-to-speech, each a different way of making speech:

| family | program | how it makes speech | voices |
|---|---|---|---|
| ``espeak-ng`` | espeak-ng (Debian ``espeak-ng``) | formant synthesis | an accent + a variant (speaker): ``en-us+m1`` |
| ``flite`` | flite (Debian ``flite``) | clustergen statistical parametric (awb, rms, slt); diphone concatenation (kal16) | ``awb``, ``rms``, ``slt``, ``kal16`` |
| ``festival`` | festival (Debian ``festival``, ``festvox-kallpc16k``, ``festvox-kdlpc16k``, ``festvox-us-slt-hts``) | diphone concatenation (kal, ked); HMM-based HTS (slt) | ``kal_diphone``, ``ked_diphone``, ``cmu_us_slt_arctic_hts`` |
| ``pico`` | SVOX Pico, Android's synthesizer (PyPI ``ttspico``, its en-US and en-GB voices bundled) | HMM-based, its own front end and vocoder | ``en-US``, ``en-GB`` |

A voice is written ``family:name`` (``flite:awb``). Every utterance has a ``tempo`` (speaking rate, 1 = the
voice's own) and a ``pitch`` (fundamental frequency factor, 1 = the voice's own), drawn per utterance in the
plan. Each synthesizer applies what it can natively (espeak-ng's ``-s``/``-p``, flite's and festival's duration
stretch, Pico's rate and pitch); what it cannot is left to sox (``SynthesisResult.sox_effects``): ``pitch``
shifts the whole spectrum by ``1200 log2(pitch)`` cents, a change of vocal tract as much as of F0, which makes
more distinct speakers from the few voices flite and festival have.

``synthesize(requests)`` reads a batch of one family's requests and yields each utterance's raw audio (any
sampling rate) as it is written; festival reads a whole batch in one process (loading a voice costs more than
reading a sentence with it), the others one process or engine call per utterance.
"""
import math
import shutil
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Sequence, Tuple, Type

FESTIVAL_VOICE_DIR = Path("/usr/share/festival/voices")


class Voice(NamedTuple):
    """One voice of one synthesizer family."""

    family: str
    name: str

    @classmethod
    def parse(cls, spec: str) -> "Voice":
        """``flite:awb`` -> Voice("flite", "awb"); a family must be named."""
        family, separator, name = spec.partition(":")
        if not separator or not family or not name:
            raise ValueError(f"a voice is written FAMILY:NAME (e.g. flite:awb), got '{spec}'")
        if family not in SYNTHESIZERS:
            raise ValueError(f"unknown synthesizer family '{family}' in '{spec}'; choose from {' '.join(SYNTHESIZERS)}")
        return cls(family, name)

    @property
    def spec(self) -> str:
        return f"{self.family}:{self.name}"

    @property
    def speaker(self) -> str:
        """The Kaldi speaker id: ``espeak-ng:en-us+f2`` -> ``espeak-ng_en-us_f2``."""
        return f"{self.family}_{self.name.replace('+', '_')}"


class SynthesisRequest(NamedTuple):
    """One utterance to read: lower-case text, a voice, and the speaking-rate and pitch factors."""

    utt_id: str
    voice: Voice
    tempo: float
    pitch: float
    text: str


class SynthesisResult(NamedTuple):
    """A synthesized utterance: its raw audio file and the sox effects still to apply (tempo, pitch)."""

    request: SynthesisRequest
    raw_wav: Path
    sox_effects: List[str]


def require_program(name: str, package: str) -> str:
    """Return the path of an executable, or raise an error naming the package that provides it."""
    path = shutil.which(name)
    if path is None:
        raise FileNotFoundError(
            f"'{name}' not found on PATH: install it (Debian/Ubuntu: apt-get install {package}, "
            "or run tools/install.sh)"
        )
    return path


def sox_pitch_effect(pitch: float) -> List[str]:
    """sox's ``pitch`` effect for a frequency factor (none for 1)."""
    cents = round(1200 * math.log2(pitch))
    return ["pitch", str(cents)] if cents else []


def sox_tempo_effect(tempo: float) -> List[str]:
    """sox's ``tempo`` effect (speech mode) for a speaking-rate factor (none for 1)."""
    return ["tempo", "-s", f"{tempo:.3f}"] if round(tempo, 3) != 1 else []


def _run(command: Sequence[str], what: str, stdin: bytes = b"") -> bytes:
    result = subprocess.run(list(command), input=stdin, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {result.returncode}): {result.stderr.decode().strip()}")
    return result.stdout


class Synthesizer(ABC):
    """One family of voices."""

    family: str
    package: str  # what provides it, for the error when it is missing

    @abstractmethod
    def voices(self) -> List[str]:
        """The names of the voices this machine has."""

    def check_voices(self, names: Sequence[str]) -> None:
        """Raise an error naming any voice of `names` this machine does not have, and the ones it has."""
        available = self.voices()
        missing = sorted(set(names) - set(available))
        if missing:
            raise ValueError(
                f"{self.family} has no voice {' '.join(missing)} here; it has: {' '.join(available)} "
                f"(more come with Debian's {self.package})"
            )

    @abstractmethod
    def synthesize(self, requests: Sequence[SynthesisRequest], raw_dir: Path) -> Iterator[SynthesisResult]:
        """Read every request into `raw_dir`, yielding each as it is written."""


class EspeakNg(Synthesizer):
    """espeak-ng: ``-s`` is 175 words/min times the tempo, ``-p`` (0-99, default 50) is 50 + 100 (pitch - 1)."""

    family = "espeak-ng"
    package = "espeak-ng"

    def voices(self) -> List[str]:
        """Every English accent espeak-ng synthesizes itself (``en-us``), alone and with every variant
        (``en-us+m1``); its mbrola voices (voice files under ``mb/``) need Debian's non-free mbrola."""
        program = require_program("espeak-ng", self.package)

        def table(kind: str) -> List[List[str]]:
            return [row.split() for row in _run([program, f"--voices={kind}"], "espeak-ng").decode().splitlines()[1:]]

        accents = [row[1] for row in table("en") if row[4].startswith("gmw/")]
        variants = [row[4].split("/")[-1] for row in table("variant")]
        return accents + [f"{accent}+{variant}" for accent in accents for variant in variants]

    def synthesize(self, requests: Sequence[SynthesisRequest], raw_dir: Path) -> Iterator[SynthesisResult]:
        program = require_program("espeak-ng", self.package)
        for request in requests:
            pitch = min(99, max(0, round(50 + 100 * (request.pitch - 1))))
            command = [program, "-v", request.voice.name, "-s", str(round(175 * request.tempo)), "-p", str(pitch),
                       "--stdout"]
            # The text goes to stdin, so that no word can be mistaken for an option.
            audio = _run(command, f"espeak-ng for {request.utt_id} (voice '{request.voice.name}'; list the "
                                  "voices with: espeak-ng --voices=en)", request.text.encode())
            raw_wav = raw_dir / f"{request.utt_id}.wav"
            raw_wav.write_bytes(audio)
            yield SynthesisResult(request, raw_wav, [])


class Flite(Synthesizer):
    """flite: ``duration_stretch`` = 1 / tempo natively, the pitch by sox."""

    family = "flite"
    package = "flite"

    def voices(self) -> List[str]:
        listing = _run([require_program("flite", self.package), "-lv"], "flite -lv").decode()
        return listing.split(":", 1)[-1].split()

    def synthesize(self, requests: Sequence[SynthesisRequest], raw_dir: Path) -> Iterator[SynthesisResult]:
        program = require_program("flite", self.package)
        for request in requests:
            raw_wav = raw_dir / f"{request.utt_id}.wav"
            _run([program, "-voice", request.voice.name, "--setf", f"duration_stretch={1 / request.tempo:.4f}",
                  "-t", request.text, "-o", str(raw_wav)], f"flite for {request.utt_id}")
            yield SynthesisResult(request, raw_wav, sox_pitch_effect(request.pitch))


class Festival(Synthesizer):
    """festival: one process per batch (grouped by voice), ``Duration_Stretch`` = 1 / tempo for the diphone
    voices; the HTS voice ignores it, so its tempo is sox's, as is every voice's pitch."""

    family = "festival"
    package = "festival and its festvox-* voices"
    native_tempo_suffix = "_diphone"

    def voices(self) -> List[str]:
        if not FESTIVAL_VOICE_DIR.is_dir():
            return []
        return sorted(path.name for path in FESTIVAL_VOICE_DIR.glob("*/*") if path.is_dir())

    def _script(self, requests: Sequence[SynthesisRequest], raw_dir: Path) -> str:
        lines = []
        current_voice = None
        for request in requests:
            if request.voice.name != current_voice:
                current_voice = request.voice.name
                lines.append(f"(voice_{current_voice})")
            # Transcripts hold letters, apostrophes and spaces only, so the Scheme string needs no escaping.
            lines += [
                f"(Parameter.set 'Duration_Stretch {1 / request.tempo:.4f})",
                f'(set! utt (Utterance Text "{request.text}"))',
                "(utt.synth utt)",
                f"(utt.save.wave utt \"{raw_dir / request.utt_id}.wav\" 'riff)",
                f'(format t "synthesized {request.utt_id}\\n")',
            ]
        return "\n".join(lines) + "\n"

    def synthesize(self, requests: Sequence[SynthesisRequest], raw_dir: Path) -> Iterator[SynthesisResult]:
        program = require_program("festival", self.package)
        requests = sorted(requests, key=lambda r: (r.voice.name, r.utt_id))
        by_id = {request.utt_id: request for request in requests}
        script = raw_dir / f"batch-{requests[0].utt_id}.scm"
        script.write_text(self._script(requests, raw_dir), encoding="utf-8")
        process = subprocess.Popen([program, "-b", str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True)
        done = 0
        for line in process.stdout:
            if line.startswith("synthesized "):
                request = by_id[line.split()[1]]
                done += 1
                effects = sox_pitch_effect(request.pitch)
                if not request.voice.name.endswith(self.native_tempo_suffix):
                    effects = sox_tempo_effect(request.tempo) + effects
                yield SynthesisResult(request, raw_dir / f"{request.utt_id}.wav", effects)
        error = process.stderr.read()
        if process.wait() != 0 or done != len(requests):
            raise RuntimeError(
                f"festival read {done} of {len(requests)} utterances of {script} (exit {process.returncode}): "
                f"{error.strip()}"
            )
        script.unlink()


class Pico(Synthesizer):
    """SVOX Pico through ttspico, in this process: rate and pitch are its percentages, 100 x the factors. At its
    default volume (100 %) Pico's own 16-bit output clips on most sentences; at 40 % it clips on none."""

    family = "pico"
    package = "ttspico (pip install ttspico; tools/install.sh installs it)"
    sample_rate = 16000
    volume = 40

    def voices(self) -> List[str]:
        self._module()
        return ["en-US", "en-GB"]

    def _module(self):
        try:
            import ttspico
        except ImportError as error:
            raise FileNotFoundError(f"the pico synthesizer needs the Python package {self.package}") from error
        return ttspico

    def synthesize(self, requests: Sequence[SynthesisRequest], raw_dir: Path) -> Iterator[SynthesisResult]:
        import soundfile
        import numpy as np

        engines: Dict[str, object] = {}
        ttspico = self._module()
        for request in requests:
            engine = engines.setdefault(request.voice.name, ttspico.TtsEngine(request.voice.name))
            engine.rate = round(100 * request.tempo)
            engine.pitch = round(100 * request.pitch)
            engine.volume = self.volume
            audio = np.frombuffer(engine.speak(request.text) or b"", dtype="<i2")
            if audio.size == 0:
                raise RuntimeError(f"pico read nothing for {request.utt_id} ('{request.text}')")
            raw_wav = raw_dir / f"{request.utt_id}.wav"
            soundfile.write(str(raw_wav), audio, self.sample_rate, subtype="PCM_16")
            yield SynthesisResult(request, raw_wav, [])


SYNTHESIZERS: Dict[str, Type[Synthesizer]] = {
    cls.family: cls for cls in (EspeakNg, Flite, Festival, Pico)
}


def synthesizer(family: str) -> Synthesizer:
    """The synthesizer of a family name."""
    return SYNTHESIZERS[family]()


def group_requests(requests: Sequence[SynthesisRequest], batch_size: int) -> List[Tuple[str, List[SynthesisRequest]]]:
    """Split requests into batches of at most `batch_size` of one family and voice, in utterance order.

    Returns:
        ``(family, batch)`` pairs; batching by voice lets festival load each voice once per batch.
    """
    by_voice: Dict[Voice, List[SynthesisRequest]] = {}
    for request in sorted(requests, key=lambda r: r.utt_id):
        by_voice.setdefault(request.voice, []).append(request)
    batches = []
    for voice in sorted(by_voice):
        voice_requests = by_voice[voice]
        for start in range(0, len(voice_requests), batch_size):
            batches.append((voice.family, voice_requests[start:start + batch_size]))
    return batches
