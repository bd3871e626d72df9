"""`python -m neurona.serving ...` = `neurona serve ...`.
May import: neurona.cli.
"""
import sys

from ..cli import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
