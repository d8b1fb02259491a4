"""A lexicon (word list) as a constraint on token sequences: which tokens may follow a prefix so that the text
it spells stays a sequence of lexicon words.

Works with ESPnet's sentencepiece token lists (a token that starts with "▁" starts a word) and its char token
lists (the token "<space>" separates words). Special symbols such as "<blank>" and "<unk>" never spell a word.
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Union

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


DEFAULT_CACHE_SIZE = 4096
"""Prefix-tree nodes whose score rows `LexiconTokenTree` keeps, the least recently scored dropped first."""
ROWS_PER_BLOCK = 256  # score rows allocated at once (2.4 MiB at V = 5000)


class LexiconTokenTree:
    """The prefixes of the lexicon's words as a character tree, walked token by token.

    A node is a word prefix (`ROOT`: between words). From a node, a token that continues a word appends its
    characters; a token that starts a word ("▁AB", "<space>") is allowed only where a word ends (or at `ROOT`) and
    walks its characters from `ROOT`; the end of sentence is allowed only where a word ends (or at `ROOT`, the
    empty hypothesis). `next_node` applies this rule to one token (a few dictionary lookups).

    `scores` needs the rule for all V tokens at once. The word-boundary tokens lead to the same nodes from every
    node where a word may end, so they are found once; the tokens that continue a node's prefix are found by
    walking its subtree together with a character tree of the continuation tokens (a step per match, not a pass
    over the token list). The score rows of the `cache_size` most recently scored nodes are kept: a long decoding
    holds at most that many, whatever the number of nodes it visits.

    Args:
        words: the lexicon, in the transcripts' spelling and case.
        token_list: the model's token list (index = token id).
        eos: id of the end-of-sentence symbol in `token_list`.
        cache_size: nodes whose score rows are kept, 2 V bytes each (a float16 per token: 39 MiB at V = 5000 and
            the default 4096 nodes). A node scored again after it was dropped is walked again: microseconds for
            a long prefix, milliseconds for the shortest ones of a 200k-word lexicon (which, scored most, stay).
    """

    def __init__(
        self, words: Iterable[str], token_list: Sequence[str], eos: int, cache_size: int = DEFAULT_CACHE_SIZE
    ):
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1 node, not {cache_size}")
        self.token_list = list(token_list)
        self.eos = eos
        self.cache_size = cache_size
        self._children: List[Dict[str, int]] = [{}]
        self._ends_word: List[bool] = [False]
        for word in self._spellable(list(words)):
            self._add(word)
        self._boundary: Dict[int, int] = {}  # token -> node, for the tokens allowed where a word ends
        self._continuing: List[Optional[str]] = []  # token -> the characters it appends (None: does not continue)
        self._piece_children: List[Dict[str, int]] = [{}]  # the character tree of the continuation tokens
        self._piece_tokens: List[List[int]] = [[]]
        for token, symbol in enumerate(self.token_list):
            self._add_token(token, symbol)
        # float16 holds 0 and -inf exactly, in half the memory of float32 and (unlike bool) a cheap conversion
        self._no_word_end_row = torch.full((len(self.token_list),), float("-inf"), dtype=torch.float16)
        self._word_end_row = self._no_word_end_row.clone()
        self._word_end_row[list(self._boundary)] = 0.0
        self._rows: OrderedDict[int, torch.Tensor] = OrderedDict()  # node -> its row, least recently scored first
        self._unused_rows: List[torch.Tensor] = []  # rows of the last block allocated, not yet given to a node

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

    def _add_token(self, token: int, symbol: str) -> None:
        """Files `token` as a boundary token (with the node it leads to), or as a continuation token (with its
        characters, also into the continuation tokens' character tree); other special symbols lead nowhere."""
        continuing = None
        if token == self.eos or symbol == CHAR_SPACE:
            self._boundary[token] = ROOT
        elif is_special_symbol(symbol):
            pass
        elif symbol.startswith(WORD_START):
            node = self._walk(ROOT, symbol[len(WORD_START) :])
            if node != DEAD:
                self._boundary[token] = node
        else:
            continuing = symbol
            piece = 0
            for character in symbol:
                child = self._piece_children[piece].get(character)
                if child is None:
                    child = len(self._piece_children)
                    self._piece_children[piece][character] = child
                    self._piece_children.append({})
                    self._piece_tokens.append([])
                piece = child
            self._piece_tokens[piece].append(token)
        self._continuing.append(continuing)

    def _walk(self, node: int, characters: str) -> int:
        for character in characters:
            node = self._children[node].get(character, DEAD)
            if node == DEAD:
                return DEAD
        return node

    def _may_end_word(self, node: int) -> bool:
        return node == ROOT or (node != DEAD and self._ends_word[node])

    def next_node(self, node: int, token: int) -> int:
        """The node `token` leads to from `node` (`DEAD` once it leaves the lexicon)."""
        if node == DEAD:
            return DEAD
        characters = self._continuing[token]
        if characters is not None:
            return self._walk(node, characters)
        return self._boundary.get(token, DEAD) if self._may_end_word(node) else DEAD

    def _continuation_tokens(self, node: int) -> List[int]:
        """The tokens that continue the word prefix of `node` into a longer one."""
        tokens = []
        pairs = [(0, node)]  # (node of the continuation tokens' tree, lexicon node) that spell the same characters
        while pairs:
            piece, prefix = pairs.pop()
            tokens.extend(self._piece_tokens[piece])
            characters, pieces = self._children[prefix], self._piece_children[piece]
            for character in characters.keys() & pieces.keys():
                pairs.append((pieces[character], characters[character]))
        return tokens

    def _row(self, node: int) -> torch.Tensor:
        """The scores of the tokens after `node` (V,) float16, kept for the `cache_size` most recently asked nodes.

        Rows are views of blocks of `ROWS_PER_BLOCK` rows, and a node dropped hands its row to the next one: the
        rows never fragment the heap between the decoder's own tensors, so they cost their 2 V bytes and no more.
        """
        row = self._rows.get(node)
        if row is not None:
            self._rows.move_to_end(node)
            return row
        if len(self._rows) == self.cache_size:
            row = self._rows.popitem(last=False)[1]
        else:
            if not self._unused_rows:
                rows = min(ROWS_PER_BLOCK, self.cache_size - len(self._rows))
                self._unused_rows = list(torch.empty((rows, len(self.token_list)), dtype=torch.float16))
            row = self._unused_rows.pop()
        row.copy_(self._word_end_row if self._may_end_word(node) else self._no_word_end_row)
        tokens = self._continuation_tokens(node) if node != DEAD else []
        if tokens:
            row[tokens] = 0.0
        self._rows[node] = row
        return row

    def scores(self, nodes: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """For each of `nodes` the score of every token (len(nodes), V): 0 where it is allowed, -inf where not."""
        if len(set(nodes)) > self.cache_size:
            # the row of one node may be handed to a later one before the batch is stacked: copy each at once
            return torch.stack([self._row(node).to(dtype, copy=True) for node in nodes])
        return torch.stack([self._row(node) for node in nodes]).to(dtype)

    def cached_nodes(self) -> int:
        """How many nodes' score rows are kept now (at most `cache_size`)."""
        return len(self._rows)

    def walk_tokens(self, tokens: Iterable[int], node: int = ROOT) -> int:
        """The node reached from `node` by `tokens` (`DEAD` once a token leaves the lexicon)."""
        for token in tokens:
            node = self.next_node(node, token)
        return node
