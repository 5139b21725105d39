"""`python -m reproduce [+sweep=NAME] [overrides]` (reproduce/cli.py)."""
from reproduce.cli import main

if __name__ == "__main__":
    main()
