"""`python -m aggregator` runs the command line."""

from .operate.cli import main

main()
