"""`python -m devkit.bench [names] [--quick]`: see devkit.bench.runner."""

import sys

from devkit.bench.runner import main

sys.exit(main())
