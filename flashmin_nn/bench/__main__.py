"""python -m flashmin_nn.bench: see flashmin_nn/bench/__init__.py for the suites and conventions."""
import sys

from .cli import main

sys.exit(main())
