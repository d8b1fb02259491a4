"""A lexicon (word list) as a constraint on token sequences: which tokens may follow a prefix so that the text
it spells stays a sequence of lexicon words.

Works with ESPnet's sentencepiece token lists (a token that starts with "▁" starts a word) and its char token
lists (the token "<space>" separates words). Special symbols such as "<blank>" and "<unk>" never spell a word.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import torch

logger = logging.getLogger(__name__)

WORD_START = "\u2581"  # sentencepiece's mark on a token that starts a word
CHAR_SPACE = "<space>"  # ESPnet's word boundary in char token lists

ROOT = 0  # the empty prefix: no word begun (or the previous one ended)
DEAD = -1  # a prefix that no lexicon word continues


def is_special_symbol(symbol: str) -> bool:
    """`<blank>`, `<unk>`, `<sos/eos>`, `<space>`: ESPnet's symbols, never part of a word."""
    return symbol.startswith("<") and symbol.endswith(">")


def read_lexicon(path: Union[str, Path]) -> List[str]:
    """Words of a lexicon file, in order, without repeats: the first field of every non-empty line.

    So a word list (one word per line), ESPnet's word token list (`data/<lang>_token_list/word/tokens.txt`; its
    `<...>` symbols are skipped) and a Kaldi `lexicon.txt` (a word, then its pronunciation) all work.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"lexicon {path} not found: give a word list, one word per line (asr.sh --use_lexicon true writes "
            "data/<lang>_token_list/lexicon.txt from the LM text in stage 5)"
        )
    fields = (line.split() for line in path.read_text(encoding="utf-8").splitlines())
    words = list(dict.fromkeys(f[0] for f in fields if f and not is_special_symbol(f[0])))
    if not words:
        raise ValueError(f"lexicon {path} holds no words (empty lines and <...> symbols only)")
    return words


class LexiconTokenTree:
    """The prefixes of the lexicon's words as a character tree, walked token by token.

    A node is a word prefix (`ROOT`: between words). From a node, a token that continues a word appends its
    characters; a token that starts a word ("▁AB", "<space>") is allowed only where a word ends (or at `ROOT`) and
    walks its characters from `ROOT`; the end of sentence is allowed only where a word ends (or at `ROOT`, the
    empty hypothesis). Transitions of a node are computed for the whole token list on first use and cached, so a
    decoding step costs a lookup per hypothesis.

    Args:
        words: the lexicon, in the transcripts' spelling and case.
        token_list: the model's token list (index = token id).
        eos: id of the end-of-sentence symbol in `token_list`.
    """

    def __init__(self, words: Iterable[str], token_list: Sequence[str], eos: int):
        self.token_list = list(token_list)
        self.eos = eos
        self._children: List[Dict[str, int]] = [{}]
        self._ends_word: List[bool] = [False]
        self._transitions: Dict[int, Tuple[torch.Tensor, List[int]]] = {}
        for word in self._spellable(list(words)):
            self._add(word)

    def _spellable(self, words: List[str]) -> List[str]:
        """The words the token list can write; the others are reported (warning, or error if none is left)."""
        characters = set()
        for token in self.token_list:
            if not is_special_symbol(token):
                characters.update(token.replace(WORD_START, ""))
        spellable, unspellable = [], []
        for word in words:
            (spellable if set(word) <= characters else unspellable).append(word)
        if not spellable:
            raise ValueError(
                f"none of the {len(words)} lexicon words can be written with the token list's characters (first "
                f"word: {words[0]!r}; the tokens use {''.join(sorted(characters))!r}): the lexicon must be in "
                "the transcripts' case and text normalization"
            )
        if unspellable:
            logger.warning(
                "%d of %d lexicon words use characters that no token has and cannot be decoded, e.g. %s",
                len(unspellable),
                len(words),
                unspellable[:5],
            )
        return spellable

    def _add(self, word: str) -> None:
        node = ROOT
        for character in word:
            child = self._children[node].get(character)
            if child is None:
                child = len(self._children)
                self._children[node][character] = child
                self._children.append({})
                self._ends_word.append(False)
            node = child
        self._ends_word[node] = True

    def _walk(self, node: int, characters: str) -> int:
        for character in characters:
            node = self._children[node].get(character, DEAD)
            if node == DEAD:
                return DEAD
        return node

    def _may_end_word(self, node: int) -> bool:
        return node == ROOT or self._ends_word[node]

    def _next_node(self, node: int, token: int) -> int:
        symbol = self.token_list[token]
        if token == self.eos or symbol == CHAR_SPACE:
            return ROOT if self._may_end_word(node) else DEAD
        if is_special_symbol(symbol):
            return DEAD
        if symbol.startswith(WORD_START):
            return self._walk(ROOT, symbol[len(WORD_START) :]) if self._may_end_word(node) else DEAD
        return self._walk(node, symbol)

    def transitions(self, node: int) -> Tuple[torch.Tensor, List[int]]:
        """For every token: its score from `node` (V,) (0 allowed, -inf not) and the node it leads to (`DEAD`)."""
        cached = self._transitions.get(node)
        if cached is None:
            if node == DEAD:
                next_nodes = [DEAD] * len(self.token_list)
            else:
                next_nodes = [self._next_node(node, token) for token in range(len(self.token_list))]
            scores = torch.tensor([0.0 if n != DEAD else float("-inf") for n in next_nodes])
            cached = self._transitions[node] = (scores, next_nodes)
        return cached

    def walk_tokens(self, tokens: Iterable[int], node: int = ROOT) -> int:
        """The node reached from `node` by `tokens` (`DEAD` once a token leaves the lexicon)."""
        for token in tokens:
            node = self.transitions(node)[1][token]
        return node
