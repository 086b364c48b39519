"""`python -m aggregator` runs the command line."""

from .cli import main

main()
