"""The ``scavenger`` command's old import path, kept for scripts that call
``python -m scavenger.cli`` or import ``main`` from here; the CLI lives in
``scavenger.tools.cli``."""

from scavenger.tools.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
