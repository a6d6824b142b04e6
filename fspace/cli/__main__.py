"""``python -m fspace.cli`` runs the command line."""

import sys

from fspace.cli import main

sys.exit(main())
