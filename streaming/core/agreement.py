"""LocalAgreement: partials whose confirmed words never flicker.

Each partial re-transcribes the whole utterance so far. A word is confirmed once two
consecutive hypotheses agree on it (and on every word before it); confirmed words are kept
as they are, and only the unconfirmed tail of the newest hypothesis is shown after them.
"""

from __future__ import annotations

from .events import WordTiming

_EDGE_PUNCTUATION = ".,!?;:\"“”‘’()[]{}…—-¿¡。，！？、"


def word_key(word: str) -> str:
    """The form in which words are compared (and Deepgram's `word`): lower case, punctuation
    stripped from both ends ("Well," -> "well"; "don't" and "U.S" keep theirs); a word that is
    nothing but punctuation stays as it is."""
    return word.strip(_EDGE_PUNCTUATION).lower() or word.lower()


class LocalAgreement:
    def __init__(self) -> None:
        self.confirmed: list[WordTiming] = []
        self._previous: list[WordTiming] = []

    def update(self, hypothesis: list[WordTiming]) -> list[WordTiming]:
        """Take a new hypothesis; return what to show: confirmed words + the new tail."""
        done = len(self.confirmed)
        tail = hypothesis[done:]
        previous_tail = self._previous[done:]
        for new, old in zip(tail, previous_tail):
            if word_key(new.word) != word_key(old.word) or not word_key(new.word):
                break
            self.confirmed.append(new)
        self._previous = hypothesis
        return self.confirmed + hypothesis[len(self.confirmed):]
