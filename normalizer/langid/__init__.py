"""Language identification for the normalizer: ``detect(text) -> LanguageGuess``.

See docs/langid.md for the method, the word lists' provenance and the numbers.
"""

from normalizer.langid.detector import LanguageGuess, SecondaryLanguage, detect

__all__ = ["LanguageGuess", "SecondaryLanguage", "detect"]
