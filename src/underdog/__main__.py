"""`python -m underdog` = the `underdog` command."""

from underdog.cli import main

main()
