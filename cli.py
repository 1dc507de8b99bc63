"""netspec's command line from a clone, without installing:

    python cli.py check specs/zoo/resnet18.yaml

The same as `netspec ...` or `python -m netspec ...`; it only puts this folder first on the
import path (needed under `python -I`, which leaves the script's folder out)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from netspec.cli import main

if __name__ == "__main__":
    sys.exit(main())
