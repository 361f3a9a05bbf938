"""nanochat-compatible imports: ``from tasks.arc import ARC`` and friends re-export chattasks."""
