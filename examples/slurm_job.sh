#!/bin/bash
# Data-parallel training with NNHandler on SLURM: one task per GPU (or per CPU slot).
#
#   sbatch examples/slurm_job.sh [arguments for ddp_torchrun.py]
#
# Lightning needs --ntasks-per-node (not --ntasks/-n): it reads SLURM_NTASKS_PER_NODE and uses it
# as the number of devices per node. Give the job a name: SLURM jobs named "bash" or
# "interactive" are treated as interactive and their variables are ignored.
#SBATCH --job-name=nn-handler-ddp
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00
## On GPU nodes, one GPU per task:
## #SBATCH --gpus-per-node=2
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
# Fail fast and keep the collective timeout short enough that a stuck rank ends the job.
export NN_HANDLER_DDP_TIMEOUT="${NN_HANDLER_DDP_TIMEOUT:-600}"
# --kill-on-bad-exit: when one task dies, srun stops the others instead of leaving them waiting.
srun --kill-on-bad-exit=1 "${PYTHON:-python}" examples/ddp_torchrun.py "$@"
