/*
 * register: the sipprofile demo. Provisions a profile in a store, enables
 * it (SIP REGISTER with digest auth), prints every event as it arrives,
 * disables it (un-REGISTER) and exits.
 *
 *   register STORE REGISTRAR AOR USER PASSWORD
 *   register /tmp/demo.db sip:127.0.0.1:5070 sip:alice@sipprofile.test alice alicepw
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sipprofile.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int last_event = -1;
static int32_t last_error = 0;

static const char *event_name(sip_profile_event e) {
    switch (e) {
    case SIP_PROFILE_CREATED: return "CREATED";
    case SIP_PROFILE_UPDATED: return "UPDATED";
    case SIP_PROFILE_REGISTERED: return "REGISTERED";
    case SIP_PROFILE_DEREGISTERED: return "DEREGISTERED";
    case SIP_PROFILE_DESTROYED: return "DESTROYED";
    case SIP_PROFILE_FORCIBLY_DISABLED: return "FORCIBLY_DISABLED";
    case SIP_PROFILE_ATTEMPT_FAILED: return "ATTEMPT_FAILED";
    }
    return "?";
}

/* Runs on a library thread. */
static void on_event(void *context, uint32_t id, sip_profile_event event) {
    (void)context;
    printf("event: profile %u %s\n", id, event_name(event));
    fflush(stdout);
    pthread_mutex_lock(&lock);
    last_event = (int)event;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

static void on_error(void *context, uint32_t id, int32_t error) {
    (void)context;
    printf("error: profile %u: %d (%s)\n", id, error, sip_strerror(error));
    fflush(stdout);
    pthread_mutex_lock(&lock);
    last_error = error;
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Waits up to `seconds` for `event` or an error; returns 1 if the event came. */
static int wait_for(int event, int seconds) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += seconds;
    pthread_mutex_lock(&lock);
    while (last_event != event && last_error == 0) {
        if (pthread_cond_timedwait(&changed, &lock, &until) != 0) break;
    }
    int ok = last_event == event;
    pthread_mutex_unlock(&lock);
    return ok;
}

#define CHECK(call)                                                              \
    do {                                                                         \
        int32_t rc_ = (call);                                                    \
        if (rc_ != SIP_OK) {                                                     \
            fprintf(stderr, "%s failed: %d (%s)\n", #call, rc_, sip_strerror(rc_)); \
            return 1;                                                            \
        }                                                                        \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s STORE REGISTRAR AOR USER PASSWORD\n", argv[0]);
        return 2;
    }
    const char *store = argv[1];
    printf("sipprofile %s\n", sip_version());

    sip_profile_registry_observer observer = {NULL, on_event, on_error};
    sip_managed_profile_registry *managed = NULL;
    CHECK(sip_managed_profile_registry_new(store, &observer, &managed));

    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *draft = NULL;
    CHECK(sip_managed_profile_registry_create(managed, &ietf, &draft));
    CHECK(sip_profile_set_str(draft, SIP_KEY_PROVIDER_NAME, "demo"));
    CHECK(sip_profile_set_str(draft, SIP_KEY_USER_AOR, argv[3]));
    CHECK(sip_profile_set_server_str(draft, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, argv[2]));
    CHECK(sip_profile_set_server_str(draft, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_USER_NAME, argv[4]));
    CHECK(sip_profile_set_server_str(draft, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, argv[5]));
    CHECK(sip_profile_set_u32(draft, SIP_KEY_REGISTRATION_EXPIRES, 600));
    CHECK(sip_managed_profile_registry_save(managed, draft));
    uint32_t id = 0;
    CHECK(sip_profile_get_u32(draft, SIP_KEY_PROFILE_ID, &id));
    printf("provisioned profile %u\n", id);
    sip_profile_free(draft);
    wait_for(SIP_PROFILE_CREATED, 2);

    sip_profile_registry *registry = NULL;
    CHECK(sip_profile_registry_new(store, &observer, &registry));
    sip_profile *profile = NULL;
    CHECK(sip_profile_registry_profile(registry, id, &profile));
    CHECK(sip_profile_registry_enable(registry, profile));
    printf("enabled; registering...\n");
    int registered = wait_for(SIP_PROFILE_REGISTERED, 15);
    if (registered) {
        char contact[512];
        size_t len = 0;
        uint32_t granted = 0;
        CHECK(sip_profile_get_str(profile, SIP_KEY_REGISTERED_CONTACT, contact, sizeof contact, &len));
        CHECK(sip_profile_get_u32(profile, SIP_KEY_GRANTED_EXPIRES, &granted));
        printf("registered: contact %s, expires %u s, context active: %s\n", contact, granted,
               sip_profile_is_context_active(profile) ? "yes" : "no");
        CHECK(sip_profile_registry_disable(registry, profile));
        printf("disabled; de-registering...\n");
        wait_for(SIP_PROFILE_DEREGISTERED, 10);
    } else {
        fprintf(stderr, "not registered: last error %d (%s)\n",
                sip_profile_registry_last_registration_error(registry, profile),
                sip_strerror(sip_profile_registry_last_registration_error(registry, profile)));
    }
    sip_profile_free(profile);
    sip_profile_registry_free(registry);
    sip_managed_profile_registry_free(managed);
    printf("done\n");
    return registered ? 0 : 1;
}
