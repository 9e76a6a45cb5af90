"""Host provisioner: `python tools/provision.py --help` (the code is tools/hostprov/cli.py, docs/hostprov.md)."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from hostprov.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
