"""ESPnet's ASR decoding with an optional lexicon: `python -m espnet_samba.bin.asr_inference`.

The options, outputs and logs of `python -m espnet2.bin.asr_inference`, plus `--lexicon WORDS`: hypotheses then
spell only words of that list (one word per line; ESPnet's word token list and Kaldi's lexicon.txt work too). An
end-to-end model writes words it has heard only a few times the way they sound ("PERSENT"); the lexicon lets the
beam search keep only spellings that exist, as the lexicon of a WFST decoder does. `--lexicon_cache_size` bounds
the token scores the lexicon keeps (see `espnet_samba.decoding.lexicon`). Without `--lexicon` this is ESPnet's
decoding unchanged.
"""
from __future__ import annotations

import contextlib
import sys
from typing import Iterator, List, Optional, Sequence, Type

from espnet2.bin import asr_inference
from espnet2.utils.types import str_or_none

from espnet_samba.compat import get_commandline_args
from espnet_samba.decoding import constrain_to_lexicon, read_lexicon
from espnet_samba.decoding.lexicon import DEFAULT_CACHE_SIZE


def get_parser():
    """ESPnet's `asr_inference` parser with a "Lexicon related" group."""
    parser = asr_inference.get_parser()
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


def speech2text_with_lexicon(
    words: Sequence[str], cache_size: int = DEFAULT_CACHE_SIZE
) -> Type[asr_inference.Speech2Text]:
    """ESPnet's `Speech2Text`, whose beam search keeps to `words` (see `constrain_to_lexicon`)."""

    class Speech2TextWithLexicon(asr_inference.Speech2Text):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            if self.beam_search is None:
                raise ValueError("--lexicon constrains the attention/CTC beam search; this model decodes without it")
            self.beam_search = constrain_to_lexicon(self.beam_search, words, cache_size)

    return Speech2TextWithLexicon


@contextlib.contextmanager
def lexicon_in_espnet_inference(words: Sequence[str], cache_size: int = DEFAULT_CACHE_SIZE) -> Iterator[None]:
    """Within the block, `espnet2.bin.asr_inference.inference` builds its `Speech2Text` with the lexicon.

    ESPnet's `inference` (data loading, batching, the 1best/N-best writers) has no hook for an extra scorer; it
    looks `Speech2Text` up in its module, so substituting the subclass there reuses all of it unchanged.
    """
    original = asr_inference.Speech2Text
    asr_inference.Speech2Text = speech2text_with_lexicon(words, cache_size)
    try:
        yield
    finally:
        asr_inference.Speech2Text = original


def main(cmd: Optional[List[str]] = None) -> None:
    print(get_commandline_args(), file=sys.stderr)
    kwargs = vars(get_parser().parse_args(cmd))
    kwargs.pop("config", None)
    lexicon, cache_size = kwargs.pop("lexicon"), kwargs.pop("lexicon_cache_size")
    if lexicon is None:
        context = contextlib.nullcontext()
    else:
        context = lexicon_in_espnet_inference(read_lexicon(lexicon), cache_size)
    with context:
        asr_inference.inference(**kwargs)


if __name__ == "__main__":
    main()
