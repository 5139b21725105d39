"""A reproduction suite of Kingma & Welling, "Auto-Encoding Variational Bayes" (2013)."""
