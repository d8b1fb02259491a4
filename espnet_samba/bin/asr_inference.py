"""ESPnet's ASR decoding with a faster CTC prefix scorer and an optional lexicon: `python -m
espnet_samba.bin.asr_inference`.

The options, outputs and logs of `python -m espnet2.bin.asr_inference`, plus:
- `--ctc_prefix_scorer scan` (the default): the joint CTC/attention beam search scores CTC prefixes with
  `ScannedCTCPrefixScorer`, ESPnet's `CTCPrefixScorer` with its Python loop over the frames, run at every output
  step, replaced by one op (the fused CPU kernel). The hypotheses and scores are ESPnet's; the decoding takes less
  time, the more so the longer the utterance (bench/bench_offline_decoding.py). `loop` keeps ESPnet's scorer.
- `--lexicon WORDS`: hypotheses then spell only words of that list (one word per line; ESPnet's word token list
  and Kaldi's lexicon.txt work too). An end-to-end model writes words it has heard only a few times the way they
  sound ("PERSENT"); the lexicon lets the beam search keep only spellings that exist, as the lexicon of a WFST
  decoder does. `--lexicon_cache_size` bounds the token scores the lexicon keeps (see
  `espnet_samba.decoding.lexicon`).

`Speech2Text` here is ESPnet's with the same options as keyword arguments, for decoding from Python.
"""
from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any, Iterator, List, Optional, Sequence, Type

from espnet2.bin import asr_inference
from espnet2.utils.types import str_or_none

from espnet_samba.compat import get_commandline_args
from espnet_samba.decoding import constrain_to_lexicon, read_lexicon
from espnet_samba.decoding.ctc_prefix_scorer import scan_ctc_prefix_scoring
from espnet_samba.decoding.lexicon import DEFAULT_CACHE_SIZE

CTC_PREFIX_SCORERS = ("scan", "loop")


class Speech2Text(asr_inference.Speech2Text):
    """ESPnet's `Speech2Text`, its CTC prefixes scored by a scan, its hypotheses optionally kept to a lexicon.

    Args:
        *args, **kwargs: ESPnet's `Speech2Text` arguments.
        ctc_prefix_scorer: "scan" (`ScannedCTCPrefixScorer`: ESPnet's scores, faster) or "loop" (ESPnet's
            `CTCPrefixScorer`). Only ESPnet's `BatchBeamSearch` (batch size 1, not streaming) takes the scan; other
            searches keep ESPnet's scorer.
        lexicon: the words hypotheses may spell (`espnet_samba.decoding.read_lexicon` reads a file), or None.
        lexicon_cache_size: prefix-tree nodes whose token scores the lexicon keeps.
    """

    def __init__(
        self,
        *args: Any,
        ctc_prefix_scorer: str = "scan",
        lexicon: Optional[Sequence[str]] = None,
        lexicon_cache_size: int = DEFAULT_CACHE_SIZE,
        **kwargs: Any,
    ) -> None:
        if ctc_prefix_scorer not in CTC_PREFIX_SCORERS:
            raise ValueError(f"ctc_prefix_scorer must be one of {CTC_PREFIX_SCORERS}, got {ctc_prefix_scorer!r}")
        super().__init__(*args, **kwargs)
        if ctc_prefix_scorer == "scan" and self.beam_search is not None:
            scan_ctc_prefix_scoring(self.beam_search)
        if lexicon is not None:
            if self.beam_search is None:
                raise ValueError("--lexicon constrains the attention/CTC beam search; this model decodes without it")
            self.beam_search = constrain_to_lexicon(self.beam_search, lexicon, lexicon_cache_size)

    @classmethod
    def from_pretrained(cls, model_tag: Optional[str] = None, **kwargs: Any) -> "Speech2Text":
        """ESPnet's `Speech2Text.from_pretrained` (a model zoo tag, or the files as keyword arguments), building
        this class."""
        if model_tag is not None:
            from espnet_model_zoo.downloader import ModelDownloader  # ESPnet's optional dependency, as in ESPnet

            kwargs.update(ModelDownloader().download_and_unpack(model_tag))
        return cls(**kwargs)


def get_parser():
    """ESPnet's `asr_inference` parser with the CTC prefix scorer and a "Lexicon related" group."""
    parser = asr_inference.get_parser()
    parser.add_argument(
        "--ctc_prefix_scorer",
        choices=CTC_PREFIX_SCORERS,
        default="scan",
        help="scan: ESPnet's CTC prefix scores with the loop over frames as one op (faster, the same hypotheses); "
        "loop: ESPnet's CTCPrefixScorer",
    )
    group = parser.add_argument_group("Lexicon related")
    group.add_argument(
        "--lexicon",
        type=str_or_none,
        default=None,
        help="Word list; when given, the beam search keeps only hypotheses that spell its words "
        "(first field of each line; <...> symbols skipped)",
    )
    group.add_argument(
        "--lexicon_cache_size",
        type=int,
        default=DEFAULT_CACHE_SIZE,
        help="Prefix-tree nodes whose token scores are kept (2 bytes per token each; "
        "bench/bench_lexicon_cache.py measures memory and speed against it)",
    )
    return parser


def speech2text_with_options(**options: Any) -> Type[Speech2Text]:
    """`Speech2Text` with `options` (its own keyword arguments) as defaults, for ESPnet's `inference` to build."""

    class Speech2TextWithOptions(Speech2Text):
        __init__ = functools.partialmethod(Speech2Text.__init__, **options)

    return Speech2TextWithOptions


@contextlib.contextmanager
def speech2text_in_espnet_inference(speech2text_class: Type[Speech2Text]) -> Iterator[None]:
    """Within the block, `espnet2.bin.asr_inference.inference` builds `speech2text_class` as its `Speech2Text`.

    ESPnet's `inference` (data loading, batching, the 1best/N-best writers) has no hook for another scorer; it
    looks `Speech2Text` up in its module, so substituting the subclass there reuses all of it unchanged.
    """
    original = asr_inference.Speech2Text
    asr_inference.Speech2Text = speech2text_class
    try:
        yield
    finally:
        asr_inference.Speech2Text = original


def main(cmd: Optional[List[str]] = None) -> None:
    print(get_commandline_args(), file=sys.stderr)
    kwargs = vars(get_parser().parse_args(cmd))
    kwargs.pop("config", None)
    lexicon = kwargs.pop("lexicon")
    speech2text_class = speech2text_with_options(
        ctc_prefix_scorer=kwargs.pop("ctc_prefix_scorer"),
        lexicon=None if lexicon is None else read_lexicon(lexicon),
        lexicon_cache_size=kwargs.pop("lexicon_cache_size"),
    )
    with speech2text_in_espnet_inference(speech2text_class):
        asr_inference.inference(**kwargs)


if __name__ == "__main__":
    main()
