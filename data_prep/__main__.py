"""`python -m data_prep` and the `data-prep` console script."""
import sys

from data_prep.cli import main

if __name__ == "__main__":
    sys.exit(main())
