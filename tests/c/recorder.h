/* Test helper: an observer that records events and errors per registry and
 * lets a test wait for them with a deadline. */
#ifndef RECORDER_H
#define RECORDER_H
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sipprofile.h"

#define MAX_RECORDS 256

typedef struct record {
    uint32_t id;
    int is_error;
    int32_t value; /* event or error code */
} record;

typedef struct recorder {
    const char *name;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    record records[MAX_RECORDS];
    int count;
    pthread_t callback_thread;
    int saw_callback;
} recorder;

static int failures = 0;

#define EXPECT(cond)                                                        \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                     \
        }                                                                   \
    } while (0)

#define EXPECT_RC(call, want)                                                         \
    do {                                                                              \
        int32_t rc_ = (call);                                                         \
        if (rc_ != (want)) {                                                          \
            fprintf(stderr, "FAIL %s:%d: %s = %d (%s), want %d\n", __FILE__, __LINE__, \
                    #call, rc_, sip_strerror(rc_), (int)(want));                      \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static inline void recorder_init(recorder *r, const char *name) {
    memset(r, 0, sizeof *r);
    r->name = name;
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->changed, NULL);
}

static inline void recorder_destroy(recorder *r) {
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
}

static inline void recorder_push(recorder *r, uint32_t id, int is_error, int32_t value) {
    pthread_mutex_lock(&r->lock);
    if (r->count < MAX_RECORDS) {
        r->records[r->count].id = id;
        r->records[r->count].is_error = is_error;
        r->records[r->count].value = value;
        r->count++;
    }
    r->callback_thread = pthread_self();
    r->saw_callback = 1;
    pthread_cond_broadcast(&r->changed);
    pthread_mutex_unlock(&r->lock);
    printf("  [%s] profile %u %s %d\n", r->name, id, is_error ? "error" : "event", value);
    fflush(stdout);
}

static inline void on_event(void *context, uint32_t id, sip_profile_event event) {
    recorder_push((recorder *)context, id, 0, (int32_t)event);
}

static inline void on_error(void *context, uint32_t id, int32_t error) {
    recorder_push((recorder *)context, id, 1, error);
}

static inline sip_profile_registry_observer recorder_observer(recorder *r) {
    sip_profile_registry_observer o = {r, on_event, on_error};
    return o;
}

static inline int recorder_count(recorder *r, uint32_t id, int is_error, int32_t value) {
    int n = 0;
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->count; i++) {
        if (r->records[i].id == id && r->records[i].is_error == is_error && r->records[i].value == value) n++;
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

/* Waits until `n` matching records exist or `ms` pass; returns 1 on success. */
static inline int recorder_wait(recorder *r, uint32_t id, int is_error, int32_t value, int n, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    for (;;) {
        if (recorder_count(r, id, is_error, value) >= n) return 1;
        pthread_mutex_lock(&r->lock);
        int rc = pthread_cond_timedwait(&r->changed, &r->lock, &until);
        pthread_mutex_unlock(&r->lock);
        if (rc != 0) return recorder_count(r, id, is_error, value) >= n;
    }
}

static inline void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

#endif
