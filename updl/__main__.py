"""``python -m updl``: the command-line interface."""

from updl.cli import main

if __name__ == "__main__":
    main()
