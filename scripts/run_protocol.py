#!/usr/bin/env python3
"""The experiment protocol; the same as the installed ``dyntransnet_protocol`` (see
``nnunet_dyntransnet/protocol/cli.py`` for what it does and its options)."""
import sys

from nnunet_dyntransnet.protocol.cli import main

if __name__ == "__main__":
    sys.exit(main())
