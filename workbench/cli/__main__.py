"""`python -m workbench.cli ...`, as the `workbench` script runs it."""

from workbench.cli import main

main()
