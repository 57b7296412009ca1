import sys

from atm.cli import main

sys.exit(main())
