"""`python -m console` is `qinling`."""

import sys

from .cli import main

sys.exit(main())
