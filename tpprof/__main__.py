import sys

from tpprof.cli import main

sys.exit(main())
