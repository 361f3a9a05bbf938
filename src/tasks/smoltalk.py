"""nanochat's ``tasks.smoltalk``, from chattasks."""

from chattasks.tasks.smoltalk import SmolTalk

__all__ = ["SmolTalk"]
