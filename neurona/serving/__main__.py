"""`python -m neurona.serving ...` = `neurona serve ...`.
May import: neurona.serving.command.
"""
import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
