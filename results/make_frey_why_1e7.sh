#!/usr/bin/env bash
# Why Frey Face AEVB runs ahead of the paper (issue 14): the n_z = 10 Figure 2 job at 1e7 samples with one
# setting changed at a time: the decoder's variance form (model.log_var=bias, anglepy's bounded01 form), a
# lower variance floor (model.min_log_var=-20) and the contiguous split; then the variance form of anglepy at the
# paper's other step sizes (0.02, 0.1; at 0.1 with and without anglepy's warm-up). Results in results/frey_why_1e7;
# the unchanged job is results/fig2_1e7/frey-aevb-nz10-s0-c4759f65. Resumable, one job at a time.
set -u
cd "$(dirname "$0")/.."
mkdir -p logs
common="dataset=frey model.n_z=10 algorithm=aevb budget=cpu_1e7 log.sweep=frey_why_1e7 log.results_dir=results log.wandb=offline log.progress=false train.threads=1 launcher=basic"
python -m reproduce -m model.log_var=bias $common
python -m reproduce -m model.min_log_var=-20 $common
python -m reproduce -m dataset.frey_split=contiguous $common
python -m reproduce -m model.log_var=bias train.lr=0.02,0.1 $common
python -m reproduce -m model.log_var=bias train.lr=0.1 train.adagrad_warmup=100 $common
