/* Making a LightOS communicator from an MPI communicator.
 *
 * Header only: it is compiled by the application's MPI compiler (mpicc),
 * and the LightOS library itself does not depend on MPI.
 *
 *     lightos_comm_t comm;
 *     lightos_status_t s = lightos_comm_init_mpi(MPI_COMM_WORLD, ctx, NULL, &comm);
 *
 * Collective over mpi_comm: rank 0 makes the group's id
 * (lightos_comm_get_unique_id), MPI_Bcast hands it to every rank, and every
 * rank joins with its MPI rank and size (lightos_comm_init_rank).  When rank
 * 0 cannot make the id, its status is broadcast instead, so every rank
 * returns that status rather than waiting for a group that will not form
 * (the error detail, lightos_last_error(), is on rank 0).  An MPI failure
 * gives LIGHTOS_UNAVAILABLE. */
#ifndef LIGHTOS_COMM_MPI_H
#define LIGHTOS_COMM_MPI_H

#include <mpi.h>
#include <stdint.h>
#include <string.h>

#include "lightos/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

static inline lightos_status_t lightos_comm_init_mpi(MPI_Comm mpi_comm,
                                                     lightos_context_t context,
                                                     const lightos_comm_config_t* config,
                                                     lightos_comm_t* out_comm) {
  int rank = 0, size = 0;
  if (MPI_Comm_rank(mpi_comm, &rank) != MPI_SUCCESS ||
      MPI_Comm_size(mpi_comm, &size) != MPI_SUCCESS || rank < 0 || size <= 0)
    return LIGHTOS_UNAVAILABLE;
  /* One broadcast: rank 0's status, then the id. */
  struct {
    int32_t status;
    lightos_comm_unique_id_t id;
  } msg;
  memset(&msg, 0, sizeof msg);
  if (rank == 0) msg.status = (int32_t)lightos_comm_get_unique_id(&msg.id);
  if (MPI_Bcast(&msg, (int)sizeof msg, MPI_BYTE, 0, mpi_comm) != MPI_SUCCESS)
    return LIGHTOS_UNAVAILABLE;
  if (msg.status != (int32_t)LIGHTOS_SUCCESS) return (lightos_status_t)msg.status;
  return lightos_comm_init_rank((uint32_t)size, &msg.id, (uint32_t)rank, context, config,
                                out_comm);
}

#ifdef __cplusplus
}
#endif
#endif
