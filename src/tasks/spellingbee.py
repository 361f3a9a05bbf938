"""nanochat's ``tasks.spellingbee``, from chattasks."""

from chattasks.tasks.spellingbee import SimpleSpelling, SpellingBee

__all__ = ["SimpleSpelling", "SpellingBee"]
