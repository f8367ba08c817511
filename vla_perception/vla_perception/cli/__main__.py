import sys

from vla_perception.cli.main import main

sys.exit(main())
