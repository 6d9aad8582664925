/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The drain deadline of a mount starts at the signal that stops it (cli.h). libfuse's
 * handlers end the session, but its loop ends only once every request being served has
 * been answered, and an fsync() waits for its upload: with S3 stalled, that is never. So the
 * handler also wakes a thread of ours, which gives the queue its deadline
 * (af_queue_set_deadline): when it passes, the waiting fsync gets EIO, the loop ends, and
 * the daemon exits on time with what is left journaled.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

#include "base/log.h"
#include "cli.h"

static const int stop_signals[] = { SIGTERM, SIGINT, SIGHUP };
#define NSIGNALS (sizeof(stop_signals) / sizeof(stop_signals[0]))

/* One watcher per process, as there is one set of signal handlers. Set before the handlers
 * are installed and read by them (old, sem) or by the thread (the rest). */
static struct {
        struct sigaction old[NSIGNALS]; /* libfuse's handlers, which ours call first */
        sem_t sem;                      /* posted by a stop signal, or by unwatch */
        volatile sig_atomic_t sig;      /* the last stop signal */
        atomic_bool leaving;            /* unwatch: the thread ends without a deadline */
        struct af_queue *queue;
        long timeout_ms;
        pthread_t thread;
        bool started;
} w;

static void on_signal(int sig)
{
        int saved = errno;

        for (size_t i = 0; i < NSIGNALS; i++) {
                const struct sigaction *o = &w.old[i];

                if (stop_signals[i] != sig)
                        continue;
                if (o->sa_flags & SA_SIGINFO)
                        o->sa_sigaction(sig, NULL, NULL);
                else if (o->sa_handler != SIG_DFL && o->sa_handler != SIG_IGN)
                        o->sa_handler(sig);
        }
        w.sig = sig;
        (void)sem_post(&w.sem); /* async-signal-safe */
        errno = saved;
}

static const char *signal_name(int sig)
{
        return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP";
}

static void *watch(void *arg)
{
        (void)arg;
        while (sem_wait(&w.sem) < 0 && errno == EINTR)
                ;
        if (atomic_load(&w.leaving))
                return NULL;
        af_log_info("op=unmount signal=%s drain_timeout_ms=%ld msg=\"stopping: uploads and "
                    "fsyncs have until the drain timeout\"",
                    signal_name(w.sig), w.timeout_ms);
        af_queue_set_deadline(w.queue, w.timeout_ms);
        return NULL;
}

void af_shutdown_watch(struct af_queue *q, long timeout_ms)
{
        struct sigaction sa = { .sa_handler = on_signal };
        int r;

        if (timeout_ms < 0 || w.started)
                return; /* no deadline to keep */
        w.queue = q;
        w.timeout_ms = timeout_ms;
        atomic_store(&w.leaving, false);
        if (sem_init(&w.sem, 0, 0) < 0)
                return;
        r = pthread_create(&w.thread, NULL, watch, NULL);
        if (r) {
                af_log_warn("op=mount err=%s msg=\"cannot start the signal watcher; the drain "
                            "timeout counts from the end of the FUSE loop\"",
                            af_q(strerror(r)));
                sem_destroy(&w.sem);
                return;
        }
        w.started = true;
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < NSIGNALS; i++)
                sigaction(stop_signals[i], &sa, &w.old[i]);
}

void af_shutdown_unwatch(void)
{
        if (!w.started)
                return;
        for (size_t i = 0; i < NSIGNALS; i++)
                sigaction(stop_signals[i], &w.old[i], NULL);
        atomic_store(&w.leaving, true);
        (void)sem_post(&w.sem);
        pthread_join(w.thread, NULL);
        sem_destroy(&w.sem);
        w.started = false;
}
