#!/usr/bin/env bash
# The published 1e7-sample results: Figure 2 (results/fig2_1e7), the MNIST n_z = 2 model of Figures 4/5
# (results/fig45_1e7), the Frey Face step-size candidates (results/frey_lr_1e7) and Figure 3 with HMC and IS
# every 1e6 samples (results/fig3_1e7, MCEM under the default gradient count). Two chains, one
# single-thread job per core. Resumable: rerun it and finished jobs are skipped, interrupted ones resume
# from their checkpoints. Logs in logs/.
set -u
cd "$(dirname "$0")/.."
mkdir -p logs
common="budget=cpu_1e7 log.results_dir=results log.wandb=offline log.progress=false train.threads=1 launcher=basic"
fig3="train.budget=10000000 eval.every=1000000 log.sweep=fig3_1e7 log.results_dir=results log.wandb=offline log.progress=false train.threads=1 launcher=basic"
chain_a() {
  python -m reproduce +sweep=fig2 +panel=mnist_200,mnist_3,mnist_5 log.sweep=fig2_1e7 log.save_weights=true $common
  python -m reproduce -m +panel=mnist_20 algorithm=aevb,wake_sleep seed=1,2 log.sweep=fig2_1e7 log.save_weights=true $common
  python -m reproduce +sweep=fig3 dataset.n_train=1000 $fig3
}
chain_b() {
  python -m reproduce +sweep=fig2 +panel=mnist_10,mnist_20,frey_2,frey_5,frey_10,frey_20 log.sweep=fig2_1e7 log.save_weights=true $common
  python -m reproduce +panel=mnist_2 algorithm=aevb log.sweep=fig45_1e7 log.save_weights=true $common
  # the chosen Frey step size (0.01, no warm-up) is the fig2_1e7 frey n_z = 10 AEVB job
  python -m reproduce -m dataset=frey model.n_z=10 algorithm=aevb train.lr=0.02,0.1 train.adagrad_warmup=0,100 log.sweep=frey_lr_1e7 $common
  python -m reproduce -m dataset=frey model.n_z=10 algorithm=aevb train.lr=0.01 train.adagrad_warmup=100 log.sweep=frey_lr_1e7 $common
  python -m reproduce +sweep=fig3 dataset.n_train=50000 $fig3
}
chain_a > logs/make_1e7_a.log 2>&1 &
chain_b > logs/make_1e7_b.log 2>&1 &
wait
