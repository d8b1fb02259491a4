"""The text the corpus reads aloud, from every source, as normalised transcripts grouped by passage.

Sources (``--text_sources``):

- ``fortunes``: the fortune-cookie database of Debian's ``fortunes`` package (``fortune_text.py``): quotations,
  jokes and aphorisms, often literary. A passage is one fortune.
- ``wordnet``: the example sentences of WordNet's glosses, Debian's ``wordnet-base`` (``wordnet_text.py``):
  everyday English of the kind a dictionary illustrates a word with. A passage is one synset. Examples with a
  hyphen are left out: WordNet writes prefixes and compounds with one (``re-write``, ``day-to-day``), which
  synthesizers read in ways no transcript convention can follow.

Every sentence goes through ``text_normalization.normalize_transcript``; the rejected ones are dropped. The
passage lets the LM text leave out everything around an evaluation sentence (``lm_text.py``), not just the
sentence itself.
"""
from pathlib import Path
from typing import Iterator, List, NamedTuple, Sequence

from fortune_text import iter_fortunes
from text_normalization import normalize_transcript
from wordnet_text import iter_examples

SOURCES = ("fortunes", "wordnet")


class Passage(NamedTuple):
    """The normalised transcripts of one fortune or synset, in order."""

    source: str
    passage_id: str
    transcripts: List[str]


def _normalized(sentences: Sequence[str]) -> List[str]:
    return [t for t in map(normalize_transcript, sentences) if t is not None]


def iter_passages(
    sources: Sequence[str], fortune_dir: Path, categories: Sequence[str], wordnet_dir: Path
) -> Iterator[Passage]:
    """Yield every passage of the chosen sources that keeps at least one transcript.

    Args:
        sources: Names from ``SOURCES``, read in the order given.
        fortune_dir: Directory of the fortune database (for ``fortunes``).
        categories: Fortune categories to read.
        wordnet_dir: Directory of the WordNet database (for ``wordnet``).
    """
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown text source(s) {' '.join(unknown)}; choose from {' '.join(SOURCES)}")
    for source in sources:
        if source == "fortunes":
            for index, (category, sentences) in enumerate(iter_fortunes(fortune_dir, categories)):
                transcripts = _normalized(sentences)
                if transcripts:
                    yield Passage(source, f"{category}.{index}", transcripts)
        else:
            synsets: dict = {}
            for synset, sentence in iter_examples(wordnet_dir):
                if "-" not in sentence:
                    synsets.setdefault(synset, []).append(sentence)
            for synset, sentences in synsets.items():
                transcripts = _normalized(sentences)
                if transcripts:
                    yield Passage(source, synset, transcripts)
