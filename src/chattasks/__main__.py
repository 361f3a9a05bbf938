"""``python -m chattasks``: the same as the ``chattasks`` command."""

from chattasks.cli import main

main()
