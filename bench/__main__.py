"""`python -m bench`: the same as `streamscribe bench`."""

import sys

from .harness import main

sys.exit(main())
