import sys

from pretrain.evaluate.cli import main

sys.exit(main())
