"""``python -m nnunet_dyntransnet.benchmark``: the same as ``dyntransnet_benchmark`` (no install needed)."""
import sys

from nnunet_dyntransnet.benchmark.cli import entry

sys.exit(entry())
