// Where a worker sits in the world, read from the environment of the launcher that started it:
// Wan Studio's own launcher and torchrun (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
// Slurm's srun (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID) and Open MPI's mpirun
// (OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK). Under Slurm and mpirun,
// MASTER_ADDR and MASTER_PORT still name the rendezvous (rank 0's host); MASTER_PORT defaults to 29500.
#pragma once
#include <map>
#include <string>

namespace wan {

struct WorkerEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string launcher = "none";  // "wan", "torchrun", "slurm", "mpirun" or "none" (a process nobody launched)
  bool store_hosted = false;      // WAN_STORE_HOSTED=1: the launcher runs the TCPStore, rank 0 must not
  std::string run_id;             // WAN_RUN_ID: the progress board to report to (Wan Studio's launcher)
};

// Throws wan::Error(kInvalidArgument) for malformed or inconsistent values, naming the variable.
WorkerEnv worker_env_from(const std::map<std::string, std::string>& env);
WorkerEnv worker_env_from_process();

}  // namespace wan
