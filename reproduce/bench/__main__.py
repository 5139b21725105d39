"""`python -m reproduce.bench` (reproduce/bench/__init__.py)."""
from reproduce.bench import main

main()
