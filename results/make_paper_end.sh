#!/usr/bin/env bash
# The published results at the paper's last points. Chain a: Figure 3 to 6e7 (N_train = 1000) and 6.8e7
# (N_train = 50,000) samples, HMC and IS at ten linear points (MCEM, whose HMC evaluation costs 3x more: five),
# in results/fig3_end. Chain b: Figure 2 to 1e8 samples (budget=cpu_1e8, weights saved) in results/fig2_1e8,
# the panels that carry the paper's claims first (MNIST n_z = 20 and Frey Face n_z = 10), then the rest.
# One single-thread job per core; chain c (Frey Face n_z = 5 AEVB) is a third process beside the last jobs of
# a and b. Resumable: rerun it and finished jobs are skipped, interrupted ones resume from their checkpoints.
# Logs in logs/.
set -u
cd "$(dirname "$0")/.."
mkdir -p logs
run="log.results_dir=results log.wandb=offline log.progress=false train.threads=1 launcher=basic"
fig3() {  # fig3 N_TRAIN BUDGET: the six curves of one N_train
  python -m reproduce +sweep=fig3 dataset.n_train=$1 algorithm=aevb,wake_sleep train.budget=$2 eval.every=$(($2 / 10)) log.sweep=fig3_end $run
  python -m reproduce +sweep=fig3 dataset.n_train=$1 algorithm=mcem train.budget=$2 eval.every=$(($2 / 5)) log.sweep=fig3_end $run
}
fig2() {  # fig2 PANELS ALGORITHMS
  python -m reproduce +sweep=fig2 +panel=$1 algorithm=$2 budget=cpu_1e8 log.sweep=fig2_1e8 log.save_weights=true $run
}
chain_a() {
  fig3 1000 60000000
  fig3 50000 68000000
  fig2 frey_10 wake_sleep
  fig2 mnist_3,mnist_5,frey_2 aevb,wake_sleep
}
chain_b() {
  fig2 mnist_20 aevb
  fig2 frey_10 aevb
  fig2 mnist_20 wake_sleep
  fig2 mnist_10,mnist_200,frey_20 aevb,wake_sleep
  fig2 frey_5 wake_sleep
}
chain_c() {  # the three last jobs share both cores and end together
  fig2 frey_5 aevb
}
chain_a > logs/make_paper_end_a.log 2>&1 &
chain_b > logs/make_paper_end_b.log 2>&1 &
chain_c > logs/make_paper_end_c.log 2>&1 &
wait
