"""`python -m embedfast ...` runs the embedfast command line."""
import sys

from .cli import main

sys.exit(main())
