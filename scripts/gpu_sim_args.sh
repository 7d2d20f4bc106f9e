# Sourced by scripts/gpu_check.sh (on the GPU) and scripts/gpu_bundle.sh
# --cpu-reference (on this machine's CPU): the one 8-peer simulation both
# run, so their throughput and gossip bytes compare. The default demo
# (configs/fmnist-gossip.toml: 8 peers, the MLP, threshold gossip on a ring)
# on the synthetic data set (12x12 inputs; the GPU machines have no
# Fashion-MNIST), batch 64, 5 epochs. Aggregate samples/s is
# steps per peer x peers x batch / wall_time_s of summary.json (its own
# samples_per_s is per virtual second). Needs $root (the repository).
gpu_sim_batch=64
gpu_sim_args=("$root/configs/fmnist-gossip.toml"
  --set data.dataset=synthetic --set data.train_samples=60000 --set data.test_samples=10000
  --set train.epochs=5 --set train.batch=$gpu_sim_batch)
