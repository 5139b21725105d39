"""`python -m reproduce.bench` (reproduce/bench/cli.py)."""
from reproduce.bench import main

main()
