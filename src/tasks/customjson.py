"""nanochat's ``tasks.customjson``, from chattasks."""

from chattasks.tasks.customjson import CustomJSON

__all__ = ["CustomJSON"]
