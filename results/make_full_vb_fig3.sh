#!/usr/bin/env bash
# Full VB (appendix F, beyond the paper) on Figure 3's protocol, beside the published AEVB, wake-sleep and
# MCEM curves at the same evaluation points: N_train = 1000 to the paper's end (6e7 samples, HMC and IS every
# 6e6, results/fig3_end) and N_train = 50,000 to 1e7 (every 1e6, results/fig3_1e7). algorithm.init_log_var = -3,
# chosen on the N_train = 1000 setting by the rule of docs/full_vb.md:
#   python -m reproduce.bench.full_vb_init --n-z 3 --n-hidden 100 --n-train 1000 -10 -8 -6 -5 -4 -3 -2 0
# One single-thread job per core. Resumable: rerun it and finished jobs are skipped, interrupted ones resume
# from their checkpoints. Logs in logs/.
set -u
cd "$(dirname "$0")/.."
mkdir -p logs
run="algorithm=full_vb algorithm.init_log_var=-3 log.results_dir=results log.wandb=offline log.progress=false train.threads=1 launcher=basic"
python -m reproduce +sweep=fig3 dataset.n_train=1000 train.budget=60000000 eval.every=6000000 log.sweep=fig3_end $run \
  > logs/make_full_vb_fig3_1000.log 2>&1 &
python -m reproduce +sweep=fig3 dataset.n_train=50000 train.budget=10000000 eval.every=1000000 log.sweep=fig3_1e7 $run \
  > logs/make_full_vb_fig3_50000.log 2>&1 &
wait
# The local reparameterisation trick (algorithm.theta_noise=local) beside it, N_train = 1000, to 1.21e7 (the same
# evaluation points as the first three of the run above), results/full_vb_local.
python -m reproduce +sweep=fig3 dataset.n_train=1000 train.budget=12100000 eval.every=6000000 log.sweep=full_vb_local \
  $run algorithm.theta_noise=local > logs/make_full_vb_fig3_local.log 2>&1
