/*
 * procs.c — the command line's side of running as one of several processes (mpirun, srun):
 * opening the communicator, and one voice for the job. Rank 0 speaks for every process: the
 * errors the processes agree on (rn_comm_agree) and the progress are the same on each, so
 * the other ranks' stdout and stderr go to /dev/null until one of them has an error of its
 * own to report (cli_comm_speak).
 */
#include "cli.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

static int saved_out = -1, saved_err = -1;

/* The rank a launcher gave this process (0 when none did), read before the communicator
 * exists, so that a refused start is reported once. */
static long launcher_rank(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK",
                                       "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        if (v) return strtol(v, NULL, 10);
    }
    return 0;
}

rn_comm *cli_comm_open(void) {
    rn_comm *c;
    rn_status s = rn_comm_open(&c);
    if (s != RN_OK) {
        if (launcher_rank() == 0) cli_lib_error(s);
        return NULL;
    }
    if (rn_comm_rank(c) != 0) {
        int null = open("/dev/null", O_WRONLY);
        fflush(stdout);
        fflush(stderr);
        saved_out = dup(1);
        saved_err = dup(2);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
            close(null);
        }
    }
    return c;
}

void cli_comm_speak(void) {
    if (saved_err < 0) return;
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    saved_out = saved_err = -1;
}

int cli_comm_local_error(rn_comm *c, rn_status s) {
    if (rn_comm_size(c) == 1) return cli_lib_error(s);
    cli_comm_speak();
    fprintf(stderr, "resnet: rank %d: %s\n", rn_comm_rank(c), rn_error_message());
    fflush(stderr);
    rn_comm_abort(c, 1);
    return 1; /* not reached: the abort ends the job */
}

int cli_comm_threads(const rn_comm *c, int threads) {
    if (threads > 0 || rn_comm_size(c) == 1) return threads;
    long cores = sysconf(_SC_NPROCESSORS_ONLN) / rn_comm_local_size(c);
    return cores > 1 ? (int)cores : 1;
}

int cli_comm_run(int (*cmd)(rn_comm *c, int argc, char **argv), int argc, char **argv) {
    rn_comm *c = cli_comm_open();
    if (!c) return 1;
    int rc = cmd(c, argc, argv);
    rn_comm_close(c);
    return rc;
}
