# ====== Job runners: run.pl (this machine) and slurm.pl (Slurm) ======
# Usage: <cmd> [options] [JOB=1:<nj>] <log> <command...>
#   e.g. run.pl --mem 4G JOB=1:10 exp/log/echo.JOB.log echo JOB
# Options (the same for both; slurm.pl maps them to sbatch options through conf/slurm.conf):
#   --gpu <n>           GPUs per job.
#   --mem <size>        memory per CPU.
#   --num_threads <n>   CPUs per job.
#   --time <time>       time limit.
#   --max-jobs-run <n>  at most n jobs of an array at once.
# "JOB=1:10" runs 10 jobs; "JOB" is replaced by the job number in the command and the log file name.
# Keep this file identical in every recipe (test/test_recipe_configs.py checks it): copy it from
# egs2/TEMPLATE/asr1/cmd.sh, and select the backend with the environment, e.g. "cmd_backend=slurm ./run.sh".
# ======================================================================

# "local" (run.pl) or "slurm" (slurm.pl).
cmd_backend=${cmd_backend:-local}

if [ "${cmd_backend}" = local ]; then
    # Everything else (data preparation, statistics, ...).
    export train_cmd="run.pl"
    # Training ("--gpu N" is added by asr.sh through espnet2.bin.launch).
    export cuda_cmd="run.pl"
    # Decoding.
    export decode_cmd="run.pl"

elif [ "${cmd_backend}" = slurm ]; then
    # Partitions and resources: conf/slurm.conf ("sinfo" lists your cluster's partitions).
    export train_cmd="slurm.pl"
    export cuda_cmd="slurm.pl"
    export decode_cmd="slurm.pl"

else
    echo "$0: Error: unknown cmd_backend=${cmd_backend} (use local or slurm)" 1>&2
    return 1
fi
