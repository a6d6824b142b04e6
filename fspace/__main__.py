"""``python -m fspace`` runs the command line."""

import sys

from fspace.cli import main

sys.exit(main())
