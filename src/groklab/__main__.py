"""`python -m groklab` is the `groklab` command."""

import sys

from groklab.cli.main import main

sys.exit(main())
