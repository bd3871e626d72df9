"""`python -m neurona.serving ...` = `neurona serve ...`.
May import: neurona.cli.
"""
import sys

from ..cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
