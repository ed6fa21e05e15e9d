"""`python -m bot` runs the `paperbell` command line."""

import sys

from bot.cli import main

# Guarded: worker processes (the snapshot import's parser) re-import the main module.
if __name__ == "__main__":
    sys.exit(main())
