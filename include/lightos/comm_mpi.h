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
 * gives LIGHTOS_UNAVAILABLE.
 *
 * Transport: when MPI runs with MPI_THREAD_MULTIPLE (MPI_Init_thread), the
 * collectives' bytes travel over MPI itself (a duplicate of mpi_comm;
 * shared memory within a node, the MPI's network between nodes) through
 * lightos_comm_init_transport; otherwise, or with LIGHTOS_COMM_MPI=0, over
 * LightOS's TCP transport, with MPI only handing out the group id.  (The
 * communicator's proxy thread calls MPI, hence the thread level.) */
#ifndef LIGHTOS_COMM_MPI_H
#define LIGHTOS_COMM_MPI_H

#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lightos/comm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The MPI transport's callbacks (lightos_comm_transport_ops_t). */
typedef struct lightos_mpi_req_ {
  MPI_Request req;
  size_t bytes;
  int is_recv;
} lightos_mpi_req_t_;

static inline int lightos_mpi_start_(void* state, void* buf, size_t bytes, uint32_t peer,
                                     void** request, int is_recv) {
  lightos_mpi_req_t_* r = (lightos_mpi_req_t_*)malloc(sizeof *r);
  if (!r) return -1;
  r->bytes = bytes;
  r->is_recv = is_recv;
  MPI_Comm comm = *(MPI_Comm*)state;
  int rc = is_recv ? MPI_Irecv(buf, (int)bytes, MPI_BYTE, (int)peer, 0x4c4b, comm, &r->req)
                   : MPI_Isend(buf, (int)bytes, MPI_BYTE, (int)peer, 0x4c4b, comm, &r->req);
  if (rc != MPI_SUCCESS) {
    free(r);
    return rc ? rc : -1;
  }
  *request = r;
  return 0;
}

static inline int lightos_mpi_isend_(void* state, const void* buf, size_t bytes, uint32_t peer,
                                     void** request) {
  return lightos_mpi_start_(state, (void*)(uintptr_t)buf, bytes, peer, request, 0);
}

static inline int lightos_mpi_irecv_(void* state, void* buf, size_t bytes, uint32_t peer,
                                     void** request) {
  return lightos_mpi_start_(state, buf, bytes, peer, request, 1);
}

static inline int lightos_mpi_test_(void* state, void* request, int* done) {
  (void)state;
  lightos_mpi_req_t_* r = (lightos_mpi_req_t_*)request;
  MPI_Status st;
  int flag = 0;
  int rc = MPI_Test(&r->req, &flag, &st);
  if (rc != MPI_SUCCESS) {
    free(r);
    return rc ? rc : -1;
  }
  *done = flag;
  if (!flag) return 0;
  int count = 0;
  int bad = r->is_recv && (MPI_Get_count(&st, MPI_BYTE, &count) != MPI_SUCCESS ||
                           (size_t)count != r->bytes);
  free(r);
  return bad ? -2 : 0;
}

static inline void lightos_mpi_cancel_(void* state, void* request) {
  (void)state;
  lightos_mpi_req_t_* r = (lightos_mpi_req_t_*)request;
  MPI_Cancel(&r->req);
  MPI_Request_free(&r->req);
  free(r);
}

static inline void lightos_mpi_destroy_(void* state) {
  MPI_Comm_free((MPI_Comm*)state);
  free(state);
}

static inline lightos_status_t lightos_comm_init_mpi(MPI_Comm mpi_comm,
                                                     lightos_context_t context,
                                                     const lightos_comm_config_t* config,
                                                     lightos_comm_t* out_comm) {
  int rank = 0, size = 0;
  if (MPI_Comm_rank(mpi_comm, &rank) != MPI_SUCCESS ||
      MPI_Comm_size(mpi_comm, &size) != MPI_SUCCESS || rank < 0 || size <= 0)
    return LIGHTOS_UNAVAILABLE;
  int level = MPI_THREAD_SINGLE;
  const char* env = getenv("LIGHTOS_COMM_MPI");
  int use_mpi = MPI_Query_thread(&level) == MPI_SUCCESS && level == MPI_THREAD_MULTIPLE &&
                !(env && env[0] == '0');
  /* Every rank decides alike (the thread level is the job's). */
  int all = 0;
  if (MPI_Allreduce(&use_mpi, &all, 1, MPI_INT, MPI_MIN, mpi_comm) != MPI_SUCCESS)
    return LIGHTOS_UNAVAILABLE;
  if (all) {
    MPI_Comm* dup = (MPI_Comm*)malloc(sizeof *dup);
    if (!dup) return LIGHTOS_OUT_OF_MEMORY;
    if (MPI_Comm_dup(mpi_comm, dup) != MPI_SUCCESS) {
      free(dup);
      return LIGHTOS_UNAVAILABLE;
    }
    MPI_Comm_set_errhandler(*dup, MPI_ERRORS_RETURN);
    lightos_comm_transport_ops_t ops;
    memset(&ops, 0, sizeof ops);
    ops.struct_size = sizeof ops;
    ops.name = "mpi";
    ops.state = dup;
    ops.isend = lightos_mpi_isend_;
    ops.irecv = lightos_mpi_irecv_;
    ops.test = lightos_mpi_test_;
    ops.cancel = lightos_mpi_cancel_;
    ops.destroy = lightos_mpi_destroy_;
    return lightos_comm_init_transport((uint32_t)size, (uint32_t)rank, &ops, context, config,
                                       out_comm);
  }
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
