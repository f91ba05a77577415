"""``python -m queuejob``: the command line."""

from .cli import main

main()
