"""What ESPnet's decoding lacks: the lexicon constraint for its beam search, and two-pass streaming recognition
(incremental features, a CTC prefix beam search, endpoint detection, attention rescoring) for causal encoders."""
from espnet_samba.decoding.attention_rescoring import AttentionRescorer, ScoredHypothesis
from espnet_samba.decoding.ctc_prefix_search import CTCPrefix, CTCPrefixBeamSearch
from espnet_samba.decoding.endpoint import EndpointRules, SegmentingSearch
from espnet_samba.decoding.lexicon import LexiconTokenTree, read_lexicon
from espnet_samba.decoding.lexicon_scorer import LexiconScorer, constrain_to_lexicon
from espnet_samba.decoding.streaming_features import StreamingFeatures
from espnet_samba.decoding.streaming_recognizer import Segment, StreamingRecognizer

__all__ = [
    "AttentionRescorer",
    "CTCPrefix",
    "CTCPrefixBeamSearch",
    "EndpointRules",
    "LexiconScorer",
    "LexiconTokenTree",
    "ScoredHypothesis",
    "Segment",
    "SegmentingSearch",
    "StreamingFeatures",
    "StreamingRecognizer",
    "constrain_to_lexicon",
    "read_lexicon",
]
