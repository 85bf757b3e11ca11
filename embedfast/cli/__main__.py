"""`python -m embedfast.cli ...` (as torchrun's `-m embedfast.cli` does) runs the embedfast command line."""
import sys

from . import main

sys.exit(main())
