#!/usr/bin/env bash
# train.precision=bf16 beside the published fp32 runs of results/fig2_1e7 (the same jobs, precision aside):
# MNIST n_z = 20 AEVB seeds 0-2, Frey Face n_z = 10 AEVB and MNIST n_z = 20 wake-sleep, seed 0, to 1e7 samples,
# in results/bf16_1e7. One single-thread job at a time. Resumable. Log in logs/.
set -u
cd "$(dirname "$0")/.."
mkdir -p logs
common="budget=cpu_1e7 train.precision=bf16 log.sweep=bf16_1e7 log.save_weights=true log.results_dir=results log.wandb=offline log.progress=false train.threads=1 launcher=basic"
{
  python -m reproduce -m +panel=mnist_20 algorithm=aevb seed=0,1,2 $common
  python -m reproduce -m +panel=frey_10 algorithm=aevb $common
  python -m reproduce -m +panel=mnist_20 algorithm=wake_sleep $common
} > logs/make_bf16_1e7.log 2>&1
