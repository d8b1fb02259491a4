"""Turn written English sentences into ASR transcripts, or reject the ones a synthesizer would not read verbatim.

Transcripts follow the usual ASR-corpus convention (LibriSpeech, WSJ): upper case, words separated by one
space, no punctuation except apostrophes inside words. A sentence is rejected (``None``) when its spoken form
is ambiguous: digits (we drop these sentences rather than spell numbers out), symbols that are read aloud
(``&``, ``$``, ``%``, ``/``...), acronyms and initials (``IBM``, ``J. R. R.``), abbreviations (``Mr.``),
attributions (``-- Mark Twain``), words without a vowel (``Hmm``), and fragments that do not start with a capital or end with ``. ! ?``.
"""
import re
from typing import Optional

# Abbreviations that end with a period and are read as a different word ("Mr." -> "mister").
ABBREVIATIONS = frozenset(
    "mr mrs ms dr st jr sr prof rev gen col capt lt sgt vs etc inc ltd co corp dept mt ft no vol".split()
)
_ALLOWED_CHARACTERS = re.compile(r"[A-Za-z \t,;:.!?'\"()\-]+")
_COMPLETE_SENTENCE = re.compile(r"[\"'(]?[A-Z].*[a-z][\"')]?[.!?][\"')]?")
_ACRONYM = re.compile(r"[A-Z]{2,}")
_MIXED_CASE = re.compile(r"[a-z][A-Z]")
_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)*")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")


def normalize_transcript(sentence: str) -> Optional[str]:
    """Normalise one written sentence into an upper-case transcript.

    Args:
        sentence: A sentence with its original casing and punctuation.

    Returns:
        The transcript (``"YOU CAN'T FOOL ME"``), or ``None`` when the sentence is rejected.
    """
    sentence = sentence.strip()
    if not _ALLOWED_CHARACTERS.fullmatch(sentence) or not _COMPLETE_SENTENCE.fullmatch(sentence):
        return None
    if "--" in sentence or _ACRONYM.search(sentence) or _MIXED_CASE.search(sentence):
        return None
    words = []
    # Hyphenated compounds are read as separate words; quotes and other punctuation are dropped.
    for token in sentence.replace("-", " ").split():
        core = token.strip(",;:.!?\"'()")
        if not core:
            continue
        if not _WORD.fullmatch(core):
            return None
        if token.endswith(".") and core.lower() in ABBREVIATIONS:
            return None
        if len(core) == 1 and core not in ("a", "A", "I"):
            return None
        if not _VOWEL.search(core):  # "Mgt", "Hmm", "Shhh": spelled out or read unpredictably
            return None
        words.append(core.upper())
    return " ".join(words) if words else None
