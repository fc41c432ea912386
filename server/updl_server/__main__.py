"""``python -m updl_server``: the same as the ``updl-server`` command."""

from .cli import main

main()
