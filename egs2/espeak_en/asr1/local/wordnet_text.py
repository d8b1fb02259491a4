"""Read the example sentences of WordNet, shipped by Debian's ``wordnet-base`` package.

Every WordNet synset (a word sense) has a gloss: a definition, often followed by examples of everyday use in
double quotes, ``... | a state of happiness; "she was full of joy"; "they shared the joy of the wedding"``. The
examples are short, plain, contemporary English, unlike the literary and humorous fortunes. They live in the
``data.noun``, ``data.verb``, ``data.adj`` and ``data.adv`` files of ``/usr/share/wordnet`` (WordNet 3.0), one
synset per line after a licence header whose lines start with two spaces.
"""
import re
from pathlib import Path
from typing import Iterator, Tuple

DEFAULT_WORDNET_DIR = Path("/usr/share/wordnet")
PARTS_OF_SPEECH = ("noun", "verb", "adj", "adv")

_QUOTED = re.compile(r'"([^"]+)"')


def data_path(wordnet_dir: Path, part_of_speech: str) -> Path:
    """The data file of one part of speech, with an error that says how to get it when it is missing."""
    path = wordnet_dir / f"data.{part_of_speech}"
    if not path.is_file():
        raise FileNotFoundError(
            f"WordNet data file {path} not found: install Debian's 'wordnet-base' package "
            "(apt-get install wordnet-base, or run tools/install.sh) or pass --wordnet_dir DIR"
        )
    return path


def as_sentence(example: str) -> str:
    """Write an example the way a sentence is written: a capital first and a full stop last when it has none.

    WordNet's examples are lower-case fragments (``"we sat up all night"``); the transcript normaliser expects
    sentences as the fortunes give them.
    """
    example = example.strip()
    if not example:
        return example
    sentence = example[0].upper() + example[1:]
    return sentence if sentence[-1] in ".!?" else sentence + "."


def iter_examples(wordnet_dir: Path) -> Iterator[Tuple[str, str]]:
    """Yield every quoted example of every synset.

    Args:
        wordnet_dir: Directory of the WordNet database files.

    Yields:
        ``(synset, sentence)`` pairs: the synset's id (``noun.05420243``, part of speech and byte offset) and the
        example written as a sentence (see :func:`as_sentence`), in file order.
    """
    for part_of_speech in PARTS_OF_SPEECH:
        with data_path(wordnet_dir, part_of_speech).open(encoding="latin-1") as f:
            for line in f:
                if line.startswith("  "):  # the licence header
                    continue
                offset, _, rest = line.partition(" ")
                _, _, gloss = rest.partition("|")
                for example in _QUOTED.findall(gloss):
                    yield f"{part_of_speech}.{offset}", as_sentence(example)
