"""`python -m bot.cli`, as the `specbridge` command."""

import sys

from bot.cli import main

sys.exit(main())
