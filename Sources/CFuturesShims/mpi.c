// MPI through dlopen, with MPICH's ABI: handles are `int`s and the constants below are MPICH's
// (`mpi.h` of MPICH 3.x and 4.x, shared by Intel MPI, Cray MPICH and MVAPICH under the MPICH ABI
// Compatibility Initiative). Open MPI has another ABI and is not loaded here.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "CFuturesShims.h"

typedef struct {
    int count_lo, count_hi_and_cancelled, source, tag, error;
} cf_mpi_status;

enum {
    CF_MPI_COMM_WORLD = 0x44000000,
    CF_MPI_BYTE = 0x4c00010d,
    CF_MPI_ANY_SOURCE = -2,
    CF_MPI_ERRORS_RETURN = 0x54000001,
};

static int (*p_init_thread)(int *, char ***, int, int *);
static int (*p_comm_rank)(int, int *);
static int (*p_comm_size)(int, int *);
static int (*p_comm_set_errhandler)(int, int);
static int (*p_isend)(const void *, int, int, int, int, int, int *);
static int (*p_test)(int *, int *, cf_mpi_status *);
static int (*p_iprobe)(int, int, int, int *, cf_mpi_status *);
static int (*p_get_count)(const cf_mpi_status *, int, int *);
static int (*p_recv)(void *, int, int, int, int, int, cf_mpi_status *);
static int (*p_finalize)(void);
static int (*p_abort)(int, int);
static int (*p_error_string)(int, char *, int *);

int cf_mpi_load(const char *path, char *error, size_t error_size) {
    static const char *candidates[] = {"libmpi.so.12", "libmpich.so.12", "libmpi.so", NULL};
    void *library = NULL;
    if (path != NULL) {
        library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    } else {
        for (int i = 0; candidates[i] != NULL && library == NULL; i++) {
            library = dlopen(candidates[i], RTLD_NOW | RTLD_GLOBAL);
        }
    }
    if (library == NULL) {
        const char *reason = dlerror();
        snprintf(error, error_size, "%s", reason ? reason : "no MPI library found");
        return -1;
    }
#define RESOLVE(pointer, name)                                                   \
    do {                                                                         \
        *(void **)(&pointer) = dlsym(library, name);                             \
        if (pointer == NULL) {                                                   \
            snprintf(error, error_size, "the MPI library has no %s", name);      \
            return -1;                                                           \
        }                                                                        \
    } while (0)
    RESOLVE(p_init_thread, "MPI_Init_thread");
    RESOLVE(p_comm_rank, "MPI_Comm_rank");
    RESOLVE(p_comm_size, "MPI_Comm_size");
    RESOLVE(p_comm_set_errhandler, "MPI_Comm_set_errhandler");
    RESOLVE(p_isend, "MPI_Isend");
    RESOLVE(p_test, "MPI_Test");
    RESOLVE(p_iprobe, "MPI_Iprobe");
    RESOLVE(p_get_count, "MPI_Get_count");
    RESOLVE(p_recv, "MPI_Recv");
    RESOLVE(p_finalize, "MPI_Finalize");
    RESOLVE(p_abort, "MPI_Abort");
    RESOLVE(p_error_string, "MPI_Error_string");
#undef RESOLVE
    // Open MPI's handles are pointers: it exports this symbol, MPICH does not.
    if (dlsym(library, "ompi_mpi_comm_world") != NULL) {
        snprintf(error, error_size, "the MPI library is Open MPI, whose ABI differs from MPICH's; use an MPICH-ABI library");
        return -1;
    }
    return 0;
}

int cf_mpi_launched(void) {
    static const char *markers[] = {"PMI_RANK", "PMI_SIZE", "PMIX_RANK", "PMI_FD", "MPI_LOCALNRANKS", NULL};
    for (int i = 0; markers[i] != NULL; i++) {
        if (getenv(markers[i]) != NULL) return 1;
    }
    return 0;
}

int cf_mpi_init(int required, int *provided) {
    int status = p_init_thread(NULL, NULL, required, provided);
    if (status != 0) return status;
    return p_comm_set_errhandler(CF_MPI_COMM_WORLD, CF_MPI_ERRORS_RETURN);
}

int cf_mpi_rank_and_size(int *rank, int *size) {
    int status = p_comm_rank(CF_MPI_COMM_WORLD, rank);
    return status != 0 ? status : p_comm_size(CF_MPI_COMM_WORLD, size);
}

int cf_mpi_isend(const void *bytes, int count, int dest, int tag, int *request) {
    return p_isend(bytes, count, CF_MPI_BYTE, dest, tag, CF_MPI_COMM_WORLD, request);
}

int cf_mpi_test(int *request, int *done) {
    cf_mpi_status status;
    return p_test(request, done, &status);
}

int cf_mpi_iprobe(int tag, int *found, int *source, int *count) {
    cf_mpi_status status;
    int result = p_iprobe(CF_MPI_ANY_SOURCE, tag, CF_MPI_COMM_WORLD, found, &status);
    if (result != 0 || !*found) return result;
    *source = status.source;
    return p_get_count(&status, CF_MPI_BYTE, count);
}

int cf_mpi_recv(void *bytes, int count, int source, int tag) {
    cf_mpi_status status;
    return p_recv(bytes, count, CF_MPI_BYTE, source, tag, CF_MPI_COMM_WORLD, &status);
}

int cf_mpi_finalize(void) { return p_finalize(); }

int cf_mpi_abort(int code) { return p_abort(CF_MPI_COMM_WORLD, code); }

void cf_mpi_error_string(int code, char *text, size_t text_size) {
    int length = 0;
    if (p_error_string == NULL || text_size < 512 || p_error_string(code, text, &length) != 0) {
        snprintf(text, text_size, "MPI error %d", code);
    }
}
