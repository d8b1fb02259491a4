"""Decoding additions to ESPnet's beam search: the lexicon constraint."""
from espnet_samba.decoding.lexicon import LexiconTokenTree, read_lexicon
from espnet_samba.decoding.lexicon_scorer import LexiconScorer, constrain_to_lexicon

__all__ = ["LexiconScorer", "LexiconTokenTree", "constrain_to_lexicon", "read_lexicon"]
