import sys

from auditproxy.cli import main

sys.exit(main())
