#!/usr/bin/env python3
"""Write sclite reference and hypothesis files ("<tokens> (<spk>-<utt>)" lines) for one unit of scoring.

Usage:
    make_trn.py --ref_text dump/raw/test/text --hyp_text exp/asr_x/decode/test/text --utt2spk dump/raw/test/utt2spk
        --token_type word --ref_trn score_wer/ref.trn --hyp_trn score_wer/hyp.trn
        [--bpemodel bpe.model] [--cleaner none] [--non_linguistic_symbols none] [--normalizer open_asr]

Tokenisation matches `python -m espnet2.bin.tokenize_text` as asr.sh uses it: word (split on whitespace) or
char (spaces become "<space>"), with non-linguistic symbols removed, or bpe pieces with --bpemodel. The cleaner
applies to the reference only (the model was trained on cleaned text, as in ESPnet). --normalizer open_asr
normalises reference and hypothesis with the English normaliser of the Open ASR Leaderboard
(whisper_normalizer's EnglishTextNormalizer) before tokenising. An utterance without hypothesis (its decoding
failed) is scored as an empty hypothesis, with a warning.
"""
import argparse
import sys
from pathlib import Path
from typing import Callable, Dict, List, Optional

from espnet2.text.char_tokenizer import CharTokenizer
from espnet2.text.cleaner import TextCleaner
from espnet2.text.sentencepiece_tokenizer import SentencepiecesTokenizer
from espnet2.text.word_tokenizer import WordTokenizer


def read_text(path: Path) -> Dict[str, str]:
    with path.open(encoding="utf-8") as table:
        entries = (line.rstrip("\n").split(maxsplit=1) for line in table if line.strip())
        return {fields[0]: fields[1] if len(fields) > 1 else "" for fields in entries}


def build_tokenize(token_type: str, bpemodel: Optional[str], non_linguistic_symbols: Optional[str]) -> Callable:
    """Return text -> tokens for the unit of scoring."""
    if token_type == "word":
        return WordTokenizer(non_linguistic_symbols=non_linguistic_symbols,
                             remove_non_linguistic_symbols=True).text2tokens
    if token_type == "char":
        return CharTokenizer(non_linguistic_symbols=non_linguistic_symbols,
                             remove_non_linguistic_symbols=True).text2tokens
    if token_type == "bpe":
        if not bpemodel or not Path(bpemodel).exists():
            raise ValueError(f"make_trn.py: --token_type bpe needs an existing --bpemodel, got {bpemodel!r}")
        return SentencepiecesTokenizer(bpemodel).text2tokens
    raise ValueError(f"make_trn.py: unknown --token_type {token_type} (word, char or bpe)")


def build_normalize(normalizer: str) -> Callable[[str], str]:
    if normalizer == "none":
        return lambda text: text
    if normalizer == "open_asr":
        try:
            from whisper_normalizer.english import EnglishTextNormalizer
        except ImportError as error:
            raise ImportError(
                "make_trn.py: --normalizer open_asr needs the whisper-normalizer package "
                "(pip install whisper-normalizer)"
            ) from error
        return EnglishTextNormalizer()
    raise ValueError(f"make_trn.py: unknown --normalizer {normalizer} (none or open_asr)")


def trn_lines(ids: List[str], speakers: Dict[str, str], texts: Dict[str, str], transform: Callable) -> List[str]:
    return [f"{' '.join(transform(texts.get(utt, '')))} ({speakers[utt]}-{utt})\n" for utt in ids]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref_text", type=Path, required=True)
    parser.add_argument("--hyp_text", type=Path, required=True)
    parser.add_argument("--utt2spk", type=Path, required=True)
    parser.add_argument("--token_type", required=True, choices=("word", "char", "bpe"))
    parser.add_argument("--bpemodel", default=None)
    parser.add_argument("--cleaner", default="none")
    parser.add_argument("--non_linguistic_symbols", default="none")
    parser.add_argument("--normalizer", default="none", choices=("none", "open_asr"))
    parser.add_argument("--ref_trn", type=Path, required=True)
    parser.add_argument("--hyp_trn", type=Path, required=True)
    args = parser.parse_args()

    speakers = read_text(args.utt2spk)
    references = read_text(args.ref_text)
    hypotheses = read_text(args.hyp_text)
    ids = [utt for utt in references if utt in speakers]
    missing = [utt for utt in ids if utt not in hypotheses]
    if missing:
        print(f"make_trn.py: WARNING: {len(missing)} of {len(ids)} utterances have no hypothesis in "
              f"{args.hyp_text} (scored as empty), e.g. {' '.join(missing[:5])}", file=sys.stderr)
    nlsyms = None if args.non_linguistic_symbols == "none" else args.non_linguistic_symbols
    tokenize = build_tokenize(args.token_type, args.bpemodel, nlsyms)
    normalize = build_normalize(args.normalizer)
    cleaner = TextCleaner(None if args.cleaner == "none" else args.cleaner)

    args.ref_trn.parent.mkdir(parents=True, exist_ok=True)
    args.hyp_trn.parent.mkdir(parents=True, exist_ok=True)
    args.ref_trn.write_text("".join(trn_lines(ids, speakers, references, lambda t: tokenize(normalize(cleaner(t))))),
                            encoding="utf-8")
    args.hyp_trn.write_text("".join(trn_lines(ids, speakers, hypotheses, lambda t: tokenize(normalize(t)))),
                            encoding="utf-8")


if __name__ == "__main__":
    main()
