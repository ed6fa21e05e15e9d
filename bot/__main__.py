"""`python -m bot` runs the `paperbell` command line."""

import sys

from bot.cli import main

sys.exit(main())
