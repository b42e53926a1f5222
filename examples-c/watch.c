/*
 * watch: prints the events of every profile of a store as they happen in this
 * process's profile server (auto-registered profiles register when it
 * starts). Events other than CREATED reach only registries that hold the
 * profile (ref §5.2), so it holds a handle of each.
 *
 *   watch STORE [SECONDS]      (default: until Ctrl-C)
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sipprofile.h"

static volatile sig_atomic_t stop = 0;
static void on_signal(int sig) {
    (void)sig;
    stop = 1;
}

static void on_event(void *context, uint32_t id, sip_profile_event event) {
    (void)context;
    static const char *names[] = {"CREATED", "UPDATED", "REGISTERED", "DEREGISTERED", "DESTROYED",
                                  "FORCIBLY_DISABLED"};
    printf("profile %u %s\n", id, (unsigned)event < 6 ? names[event] : "?");
    fflush(stdout);
}

static void on_error(void *context, uint32_t id, int32_t error) {
    (void)context;
    printf("profile %u error %d (%s)\n", id, error, sip_strerror(error));
    fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s STORE [SECONDS]\n", argv[0]);
        return 2;
    }
    int seconds = argc > 2 ? atoi(argv[2]) : -1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    sip_profile_registry_observer observer = {NULL, on_event, on_error};
    sip_profile_registry *registry = NULL;
    int32_t rc = sip_profile_registry_new(argv[1], &observer, &registry);
    if (rc != SIP_OK) {
        fprintf(stderr, "cannot open %s: %s\n", argv[1], sip_strerror(rc));
        return 1;
    }
    sip_profile_list *held = NULL;
    rc = sip_profile_registry_profiles(registry, &held);
    if (rc != SIP_OK) {
        fprintf(stderr, "cannot list profiles: %s\n", sip_strerror(rc));
        sip_profile_registry_free(registry);
        return 1;
    }
    fprintf(stderr, "watching %zu profile(s)\n", sip_profile_list_len(held));
    struct timespec tick = {0, 100000000L};
    for (int waited = 0; !stop && (seconds < 0 || waited < seconds * 10); waited++) nanosleep(&tick, NULL);
    sip_profile_list_free(held);
    sip_profile_registry_free(registry);
    return 0;
}
