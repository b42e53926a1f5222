/*
 * Concurrency stress through the C API, against Kamailio: 8 threads over
 * 3 user registries and 2 managed ones enable, disable, save, destroy and
 * retrieve a shared set of profiles for a bounded time, under a watchdog.
 * Afterwards nothing is in use, every profile is unregistered, and a new
 * server reads back exactly the profiles the threads know exist. Run under
 * ASan/UBSan and, separately, valgrind (tests/c_interop.rs).
 *
 *   stress STORE REGISTRAR SECONDS
 */
#include <signal.h>
#include <unistd.h>

#include "recorder.h"

#define THREADS 8
#define MAX_IDS 64

static const char *registrar;
static sip_managed_profile_registry *managed[2];
static sip_profile_registry *users[3];
static pthread_mutex_t ids_lock = PTHREAD_MUTEX_INITIALIZER;
static uint32_t ids[MAX_IDS];
static int id_count = 0;
static volatile int stop = 0;
static volatile unsigned long progress = 0;

static volatile unsigned long heard = 0;

static void count_event(void *context, uint32_t profile_id, sip_profile_event event) {
    (void)context, (void)profile_id, (void)event;
    __atomic_add_fetch(&heard, 1, __ATOMIC_RELAXED);
}

static void count_error(void *context, uint32_t profile_id, int32_t error) {
    (void)context, (void)profile_id, (void)error;
    __atomic_add_fetch(&heard, 1, __ATOMIC_RELAXED);
}

static uint32_t add_profile(sip_managed_profile_registry *m) {
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *p = NULL;
    uint32_t id = 0;
    if (sip_managed_profile_registry_create(m, &ietf, &p) != SIP_OK) return 0;
    sip_profile_set_str(p, SIP_KEY_USER_AOR, "sip:alice@sipprofile.test");
    sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, registrar);
    sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_USER_NAME, "alice");
    sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, "alicepw");
    if (sip_managed_profile_registry_save(m, p) == SIP_OK) sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id);
    sip_profile_free(p);
    return id;
}

static uint32_t pick(unsigned *seed) {
    pthread_mutex_lock(&ids_lock);
    uint32_t id = id_count ? ids[rand_r(seed) % id_count] : 0;
    pthread_mutex_unlock(&ids_lock);
    return id;
}

static void forget(uint32_t id) {
    pthread_mutex_lock(&ids_lock);
    for (int i = 0; i < id_count; i++)
        if (ids[i] == id) {
            ids[i] = ids[--id_count];
            break;
        }
    pthread_mutex_unlock(&ids_lock);
}

static void remember(uint32_t id) {
    pthread_mutex_lock(&ids_lock);
    if (id && id_count < MAX_IDS) ids[id_count++] = id;
    pthread_mutex_unlock(&ids_lock);
}

typedef struct held {
    sip_profile_registry *r;
    sip_profile *p;
} held;

static void *worker(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg * 7919u + 1;
    held h[32];
    int n = 0;
    while (!stop) {
        sip_profile_registry *u = users[rand_r(&seed) % 3];
        sip_managed_profile_registry *m = managed[rand_r(&seed) % 2];
        uint32_t id = pick(&seed);
        sip_profile *p = NULL;
        switch (rand_r(&seed) % 10) {
        case 0: case 1: case 2:
            if (id && n < 32 && sip_profile_registry_profile(u, id, &p) == SIP_OK) {
                sip_profile_registry_enable(u, p);
                h[n].r = u;
                h[n++].p = p;
            }
            break;
        case 3: case 4:
            if (n) {
                int i = rand_r(&seed) % n;
                sip_profile_registry_disable(h[i].r, h[i].p);
                sip_profile_free(h[i].p);
                h[i] = h[--n];
            }
            break;
        case 5:
            if (id && sip_managed_profile_registry_profile(m, id, &p) == SIP_OK) {
                sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, (rand_r(&seed) & 1) ? "a" : "b");
                sip_managed_profile_registry_save(m, p);
                sip_profile_free(p);
            }
            break;
        case 6:
            if (id && sip_managed_profile_registry_profile(m, id, &p) == SIP_OK) {
                if (sip_managed_profile_registry_destroy(m, p) == SIP_OK) forget(id);
                sip_profile_free(p);
            }
            break;
        case 7:
            if (id_count < 24) remember(add_profile(m));
            break;
        default: {
            sip_profile_list *l = NULL;
            if (sip_profile_registry_profiles(u, &l) == SIP_OK) sip_profile_list_free(l);
        }
        }
        __atomic_add_fetch(&progress, 1, __ATOMIC_RELAXED);
    }
    for (int i = 0; i < n; i++) sip_profile_free(h[i].p); /* implicit disable */
    return NULL;
}

static void *watchdog(void *arg) {
    (void)arg;
    unsigned long last = 0;
    int still = 0;
    while (!stop) {
        sleep_ms(200);
        unsigned long now = __atomic_load_n(&progress, __ATOMIC_RELAXED);
        still = now == last ? still + 1 : 0;
        last = now;
        if (still > 100) { /* 20 s without progress: a deadlock */
            fprintf(stderr, "watchdog: deadlock\n");
            abort();
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    const char *store = argv[1];
    registrar = argv[2];
    int seconds = atoi(argv[3]);
    /* Some registries with an observer (served by the delivery threads), some without
       (handles updated in place by the server): both paths under load. */
    sip_profile_registry_observer counting = {NULL, count_event, count_error};
    for (int i = 0; i < 2; i++)
        EXPECT_RC(sip_managed_profile_registry_new(store, i == 1 ? &counting : NULL, &managed[i]), SIP_OK);
    for (int i = 0; i < 3; i++)
        EXPECT_RC(sip_profile_registry_new(store, i == 1 ? &counting : NULL, &users[i]), SIP_OK);
    for (int i = 0; i < 12; i++) remember(add_profile(managed[0]));
    pthread_t t[THREADS], w;
    pthread_create(&w, NULL, watchdog, NULL);
    for (intptr_t i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)i);
    sleep_ms(seconds * 1000);
    stop = 1;
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    pthread_join(w, NULL);
    EXPECT(progress > 100);
    EXPECT(__atomic_load_n(&heard, __ATOMIC_RELAXED) > 0);

    /* Nothing is in use; everything settles to unregistered. */
    sip_profile_list *l = NULL;
    EXPECT_RC(sip_managed_profile_registry_profiles(managed[0], &l), SIP_OK);
    size_t count = sip_profile_list_len(l);
    EXPECT((int)count == id_count);
    for (size_t i = 0; i < count; i++) {
        sip_profile *p = sip_profile_list_take(l, i);
        uint32_t id = 0;
        bool in_use = true;
        sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id);
        EXPECT_RC(sip_managed_profile_registry_is_in_use(managed[0], p, &in_use), SIP_OK);
        EXPECT(!in_use);
        int settled = 0, status = -1;
        for (int k = 0; k < 600 && !settled; k++) { /* valgrind is slow */
            sip_profile *q = NULL;
            if (sip_managed_profile_registry_profile(managed[0], id, &q) == SIP_OK) {
                status = sip_profile_registration_status(q);
                settled = status == SIP_PROFILE_STATUS_UNREGISTERED;
                sip_profile_free(q);
            }
            if (!settled) sleep_ms(100);
        }
        if (!settled) fprintf(stderr, "profile %u did not settle: status %d\n", id, status);
        EXPECT(settled);
        sip_profile_free(p);
    }
    sip_profile_list_free(l);
    for (int i = 0; i < 3; i++) sip_profile_registry_free(users[i]);
    for (int i = 0; i < 2; i++) sip_managed_profile_registry_free(managed[i]);

    /* A new server reads back exactly the known set. */
    sip_managed_profile_registry *m = NULL;
    EXPECT_RC(sip_managed_profile_registry_new(store, NULL, &m), SIP_OK);
    EXPECT_RC(sip_managed_profile_registry_profiles(m, &l), SIP_OK);
    EXPECT((int)sip_profile_list_len(l) == id_count);
    sip_profile_list_free(l);

    /* The last registries freed while registrations are in flight: the
     * server stops within its bounded wait (and, under valgrind, leaks
     * nothing). */
    sip_profile_registry *u = NULL;
    EXPECT_RC(sip_profile_registry_new(store, NULL, &u), SIP_OK);
    sip_profile *live[MAX_IDS] = {0};
    for (int i = 0; i < id_count; i++) {
        /* Kept: freeing a handle would disable the profile at once. */
        if (sip_profile_registry_profile(u, ids[i], &live[i]) == SIP_OK) sip_profile_registry_enable(u, live[i]);
    }
    struct timespec a, z;
    clock_gettime(CLOCK_MONOTONIC, &a);
    sip_managed_profile_registry_free(m);
    sip_profile_registry_free(u); /* the last one */
    clock_gettime(CLOCK_MONOTONIC, &z);
    EXPECT(z.tv_sec - a.tv_sec <= 6);
    for (int i = 0; i < id_count; i++) sip_profile_free(live[i]); /* handles outlive registries */
    if (failures) {
        fprintf(stderr, "stress: %d failure(s)\n", failures);
        return 1;
    }
    printf("stress: all checks passed (%lu operations)\n", progress);
    return 0;
}
