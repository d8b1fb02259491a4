"""Read English sentences from the fortune-cookie database shipped by Debian's ``fortunes`` package.

A fortune file is plain text with one fortune per block, blocks separated by a line holding a single ``%``.
The database lives in ``/usr/share/games/fortunes`` (one file per category, plus ``.dat`` indexes and ``.u8``
links that we ignore).
"""
import re
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple

DEFAULT_FORTUNE_DIR = Path("/usr/share/games/fortunes")

# Prose categories of the `fortunes` package. Left out: ascii-art, perl, linux (IRC logs), knghtbrd,
# debian, translate-me, zippy (non-sentences), disclaimer, definitions, riddles (formatted entries), and
# the categories with the crudest jokes (ethnic, men-women, drugs).
DEFAULT_CATEGORIES = (
    "art", "computers", "cookie", "education", "food", "fortunes", "goedel", "humorists", "kids", "law",
    "literature", "love", "magic", "medicine", "miscellaneous", "news", "paradoxum", "people", "pets",
    "platitudes", "politics", "pratchett", "science", "songs-poems", "sports", "startrek", "tao",
    "wisdom", "work",
)

_FORTUNE_SEPARATOR = re.compile(r"^%[ \t]*$", flags=re.MULTILINE)
# A sentence ends at . ! or ? (possibly followed by a closing quote) before whitespace and the capital
# letter or opening quote that starts the next one.
_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])[\"']?\s+(?=[\"']?[A-Z])")


def split_fortunes(text: str) -> List[str]:
    """Split the text of one fortune file into fortunes, each with its whitespace collapsed to single spaces.

    Args:
        text: Contents of a fortune file.

    Returns:
        The non-empty fortunes in file order.
    """
    fortunes = (" ".join(block.split()) for block in _FORTUNE_SEPARATOR.split(text))
    return [fortune for fortune in fortunes if fortune]


def split_sentences(paragraph: str) -> List[str]:
    """Split a paragraph (one fortune on a single line) into sentences.

    Args:
        paragraph: Text without line breaks.

    Returns:
        The sentences in order, each still carrying its punctuation.
    """
    return [sentence.strip() for sentence in _SENTENCE_BOUNDARY.split(paragraph) if sentence.strip()]


def category_path(fortune_dir: Path, category: str) -> Path:
    """Return the file of one fortune category, with an error that says how to get it when it is missing."""
    path = fortune_dir / category
    if not path.is_file():
        if not fortune_dir.is_dir():
            raise FileNotFoundError(
                f"fortune database not found at {fortune_dir}: install Debian's 'fortunes' package "
                "(apt-get install fortunes, or run tools/install.sh) or pass --fortune_dir DIR"
            )
        available = sorted(p.name for p in fortune_dir.iterdir() if p.is_file() and "." not in p.name)
        raise FileNotFoundError(
            f"fortune category '{category}' not found in {fortune_dir}; available: {' '.join(available)}"
        )
    return path


def iter_fortunes(fortune_dir: Path, categories: Sequence[str]) -> Iterator[Tuple[str, List[str]]]:
    """Yield every fortune of the given categories as its list of sentences.

    Args:
        fortune_dir: Directory of the fortune database.
        categories: Category file names to read, in the order given.

    Yields:
        ``(category, sentences)`` pairs, one per fortune, in file order.
    """
    for category in categories:
        text = category_path(fortune_dir, category).read_text(encoding="utf-8", errors="replace")
        for fortune in split_fortunes(text):
            yield category, split_sentences(fortune)


def iter_sentences(fortune_dir: Path, categories: Sequence[str]) -> Iterator[Tuple[str, str]]:
    """Yield every sentence of the given fortune categories.

    Args:
        fortune_dir: Directory of the fortune database.
        categories: Category file names to read, in the order given.

    Yields:
        ``(category, sentence)`` pairs.
    """
    for category, sentences in iter_fortunes(fortune_dir, categories):
        for sentence in sentences:
            yield category, sentence
