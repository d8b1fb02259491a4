# Where the corpora are. Each root can be overridden from the environment, e.g.
#   LIBRISPEECH=/data/LibriSpeech ./run.sh
# An empty value means the corpus is not available here; the recipe's local/data.sh says what it needs.

# Downloaded by egs2/librispeech*/asr1/local/data.sh when missing (the default is relative to the recipe dir).
LIBRISPEECH=${LIBRISPEECH:-downloads}
# Local releases (licensed; not downloaded by the recipes).
GIGASPEECH=${GIGASPEECH:-}
SPGISPEECH=${SPGISPEECH:-}
# Text sources of the offline demo corpus (egs2/espeak_en): Debian's `fortunes` package ...
FORTUNES=${FORTUNES:-/usr/share/games/fortunes}
# ... and the example sentences of WordNet: Debian's `wordnet-base`.
WORDNET=${WORDNET:-/usr/share/wordnet}
