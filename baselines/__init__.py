"""Baselines the paper compares AEVB with: wake-sleep (and reweighted wake-sleep), Monte Carlo EM."""
