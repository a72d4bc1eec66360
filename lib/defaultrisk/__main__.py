"""`python -m defaultrisk <job> ...`: the same command line as the `defaultrisk` console script."""

import sys

from defaultrisk.cli import main

sys.exit(main())
