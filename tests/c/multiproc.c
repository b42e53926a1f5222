/*
 * One client process of the shared profile server, driven line by line on
 * stdin by tests/shared_server.rs (several of these run against one store).
 *
 * Each command prints exactly one result line, `ok [...]` or `err CODE`;
 * every observer callback prints a line as it runs:
 *
 *   event KIND ID NAME on=main|library     (KIND: user or managed)
 *   error KIND ID CODE on=main|library
 *
 * `on=main` means the callback ran on the thread reading the commands (only
 * `dispatch` may do that). Lines are written whole and flushed at once.
 *
 * Commands (ID: a profile id):
 *   open user|managed STORE [app] [attempts]   a registry with an observer
 *   close user|managed                          free it
 *   add AOR REGISTRAR USER PASS [auto]          managed: save a new IETF profile -> ok ID
 *   hold ID                                     user: keep a handle (its events come here)
 *   free ID                                     user: free the kept handle
 *   enable ID | disable ID                      user: with the kept handle (kept if not yet)
 *   status ID                                   the kept handle -> ok status=N enabled=0|1
 *   show ID                                     the kept handle's data
 *   get ID                                      a fresh lookup's data
 *   default                                     -> ok ID of the default profile
 *   save ID provider|password|auto|default VAL  managed: look up, set, save
 *   destroy ID                                  managed
 *   poll MS                                     user event fd -> ok readable | ok idle
 *   dispatch [MAX]                              user -> ok RAN
 *   pid                                         -> ok PID
 *   quit                                        free everything, exit 0
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sipprofile.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t main_thread;

/* One whole line on stdout, flushed: callbacks print from other threads. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&out_lock);
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    va_end(ap);
}

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
    return "UNKNOWN";
}

static const char *thread_name(void) {
    return pthread_equal(pthread_self(), main_thread) ? "main" : "library";
}

static void on_event(void *context, uint32_t id, sip_profile_event event) {
    say("event %s %u %s on=%s", (const char *)context, id, event_name(event), thread_name());
}

static void on_error(void *context, uint32_t id, int32_t error) {
    say("error %s %u %d on=%s", (const char *)context, id, error, thread_name());
}

static sip_profile_registry *user;
static sip_managed_profile_registry *managed;

#define MAX_HELD 64
static struct held {
    uint32_t id;
    sip_profile *p;
} held[MAX_HELD];

static struct held *find_held(uint32_t id) {
    for (int i = 0; i < MAX_HELD; i++)
        if (held[i].p && held[i].id == id) return &held[i];
    return NULL;
}

/* The kept user handle of `id`, looked up if not kept yet; NULL with *rc set. */
static sip_profile *keep(uint32_t id, int32_t *rc) {
    struct held *h = find_held(id);
    if (h) return h->p;
    for (int i = 0; i < MAX_HELD; i++) {
        if (!held[i].p) {
            sip_profile *p = NULL;
            *rc = sip_profile_registry_profile(user, id, &p);
            if (*rc != SIP_OK) return NULL;
            held[i].id = id;
            held[i].p = p;
            return p;
        }
    }
    *rc = SIP_ERR_NO_MEMORY;
    return NULL;
}

static void free_held(void) {
    for (int i = 0; i < MAX_HELD; i++) {
        sip_profile_free(held[i].p);
        held[i].p = NULL;
    }
}

static void result(int32_t rc) {
    if (rc == SIP_OK)
        say("ok");
    else
        say("err %d", rc);
}

/* The profile's data on one line. */
static void describe(const sip_profile *p) {
    char aor[256] = "", provider[4096] = "", contact[64] = "";
    size_t len = 0;
    uint32_t id = 0;
    bool autoreg = false, dflt = false;
    sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id);
    sip_profile_get_str(p, SIP_KEY_USER_AOR, aor, sizeof aor, &len);
    if (sip_profile_get_str(p, SIP_KEY_PROVIDER_NAME, provider, sizeof provider, &len) != SIP_OK) provider[0] = '\0';
    sip_profile_get_str(p, SIP_KEY_CONTACT_HEADER_USER, contact, sizeof contact, &len);
    sip_profile_get_bool(p, SIP_KEY_AUTO_REGISTRATION, &autoreg);
    sip_profile_get_bool(p, SIP_KEY_DEFAULT_PROFILE, &dflt);
    say("ok id=%u aor=%s provider=%s contact=%s auto=%d default=%d status=%d", id, aor, provider, contact, autoreg,
        dflt, (int)sip_profile_registration_status(p));
}

static int32_t open_registry(char *args) {
    char *kind = strtok(args, " "), *store = strtok(NULL, " "), *opt;
    uint32_t flags = 0;
    if (!kind || !store) return SIP_ERR_ARGUMENT;
    while ((opt = strtok(NULL, " "))) {
        if (strcmp(opt, "app") == 0)
            flags |= SIP_REGISTRY_APP_DISPATCH;
        else if (strcmp(opt, "attempts") == 0)
            flags |= SIP_REGISTRY_ATTEMPT_EVENTS;
        else
            return SIP_ERR_ARGUMENT;
    }
    if (strcmp(kind, "user") == 0 && !user) {
        sip_profile_registry_observer o = {(void *)"user", on_event, on_error};
        return sip_profile_registry_new_with_flags(store, &o, flags, &user);
    }
    if (strcmp(kind, "managed") == 0 && !managed) {
        sip_profile_registry_observer o = {(void *)"managed", on_event, on_error};
        return sip_managed_profile_registry_new_with_flags(store, &o, flags, &managed);
    }
    return SIP_ERR_ARGUMENT;
}

static int32_t add_profile(char *args, uint32_t *id) {
    char *aor = strtok(args, " "), *registrar = strtok(NULL, " "), *name = strtok(NULL, " "),
         *password = strtok(NULL, " "), *opt = strtok(NULL, " ");
    if (!managed || !aor || !registrar || !name || !password) return SIP_ERR_ARGUMENT;
    sip_profile_type_info ietf = {SIP_PROFILE_CLASS_INTERNET, "IETF"};
    sip_profile *p = NULL;
    int32_t rc = sip_managed_profile_registry_create(managed, &ietf, &p);
    if (rc == SIP_OK) rc = sip_profile_set_str(p, SIP_KEY_USER_AOR, aor);
    if (rc == SIP_OK) rc = sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, registrar);
    if (rc == SIP_OK) rc = sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_USER_NAME, name);
    if (rc == SIP_OK) rc = sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, password);
    if (rc == SIP_OK) rc = sip_profile_set_u32(p, SIP_KEY_REGISTRATION_EXPIRES, 300);
    if (rc == SIP_OK && opt && strcmp(opt, "auto") == 0) rc = sip_profile_set_bool(p, SIP_KEY_AUTO_REGISTRATION, true);
    if (rc == SIP_OK) rc = sip_managed_profile_registry_save(managed, p);
    if (rc == SIP_OK) rc = sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, id);
    sip_profile_free(p);
    return rc;
}

/* A fresh managed handle of `id`, one field set, saved (the password is
 * empty unless set here: the stored one is kept). */
static int32_t save_field(char *args) {
    char *ids = strtok(args, " "), *field = strtok(NULL, " "), *value = strtok(NULL, " ");
    if (!managed || !ids || !field || !value) return SIP_ERR_ARGUMENT;
    sip_profile *p = NULL;
    int32_t rc = sip_managed_profile_registry_profile(managed, (uint32_t)strtoul(ids, NULL, 10), &p);
    if (rc != SIP_OK) return rc;
    if (strcmp(field, "provider") == 0)
        rc = sip_profile_set_str(p, SIP_KEY_PROVIDER_NAME, value);
    else if (strcmp(field, "password") == 0)
        rc = sip_profile_set_server_str(p, SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, value);
    else if (strcmp(field, "auto") == 0)
        rc = sip_profile_set_bool(p, SIP_KEY_AUTO_REGISTRATION, strcmp(value, "1") == 0);
    else if (strcmp(field, "default") == 0)
        rc = sip_profile_set_bool(p, SIP_KEY_DEFAULT_PROFILE, strcmp(value, "1") == 0);
    else
        rc = SIP_ERR_ARGUMENT;
    if (rc == SIP_OK) rc = sip_managed_profile_registry_save(managed, p);
    sip_profile_free(p);
    return rc;
}

static void close_all(void) {
    free_held();
    sip_profile_registry_free(user);
    user = NULL;
    sip_managed_profile_registry_free(managed);
    managed = NULL;
}

int main(void) {
    main_thread = pthread_self();
    char line[2048];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *cmd = strtok(line, " ");
        char *rest = strtok(NULL, "");
        uint32_t id = rest ? (uint32_t)strtoul(rest, NULL, 10) : 0;
        int32_t rc = SIP_OK;
        if (!cmd) continue;
        if (strcmp(cmd, "open") == 0) {
            result(rest ? open_registry(rest) : SIP_ERR_ARGUMENT);
        } else if (strcmp(cmd, "close") == 0) {
            if (rest && strcmp(rest, "user") == 0) {
                free_held();
                sip_profile_registry_free(user);
                user = NULL;
            } else if (rest && strcmp(rest, "managed") == 0) {
                sip_managed_profile_registry_free(managed);
                managed = NULL;
            } else {
                rc = SIP_ERR_ARGUMENT;
            }
            result(rc);
        } else if (strcmp(cmd, "add") == 0) {
            rc = rest ? add_profile(rest, &id) : SIP_ERR_ARGUMENT;
            if (rc == SIP_OK)
                say("ok %u", id);
            else
                result(rc);
        } else if (strcmp(cmd, "hold") == 0) {
            keep(id, &rc);
            result(rc);
        } else if (strcmp(cmd, "free") == 0) {
            struct held *h = find_held(id);
            if (h) {
                sip_profile_free(h->p);
                h->p = NULL;
            }
            result(h ? SIP_OK : SIP_ERR_NOT_FOUND);
        } else if (strcmp(cmd, "enable") == 0 || strcmp(cmd, "disable") == 0) {
            sip_profile *p = keep(id, &rc);
            if (p)
                rc = cmd[0] == 'e' ? sip_profile_registry_enable(user, p) : sip_profile_registry_disable(user, p);
            result(rc);
        } else if (strcmp(cmd, "status") == 0) {
            struct held *h = find_held(id);
            if (h)
                say("ok status=%d enabled=%d", (int)sip_profile_registration_status(h->p),
                    sip_profile_registry_is_enabled(user, h->p));
            else
                result(SIP_ERR_NOT_FOUND);
        } else if (strcmp(cmd, "show") == 0) {
            struct held *h = find_held(id);
            if (h)
                describe(h->p);
            else
                result(SIP_ERR_NOT_FOUND);
        } else if (strcmp(cmd, "get") == 0) {
            sip_profile *p = NULL;
            rc = user ? sip_profile_registry_profile(user, id, &p) : sip_managed_profile_registry_profile(managed, id, &p);
            if (rc == SIP_OK)
                describe(p);
            else
                result(rc);
            sip_profile_free(p);
        } else if (strcmp(cmd, "default") == 0) {
            sip_profile *p = NULL;
            rc = user ? sip_profile_registry_default_profile(user, &p)
                      : sip_managed_profile_registry_default_profile(managed, &p);
            if (rc == SIP_OK) rc = sip_profile_get_u32(p, SIP_KEY_PROFILE_ID, &id);
            if (rc == SIP_OK)
                say("ok %u", id);
            else
                result(rc);
            sip_profile_free(p);
        } else if (strcmp(cmd, "save") == 0) {
            result(rest ? save_field(rest) : SIP_ERR_ARGUMENT);
        } else if (strcmp(cmd, "destroy") == 0) {
            sip_profile *p = NULL;
            rc = managed ? sip_managed_profile_registry_profile(managed, id, &p) : SIP_ERR_ARGUMENT;
            if (rc == SIP_OK) rc = sip_managed_profile_registry_destroy(managed, p);
            sip_profile_free(p);
            result(rc);
        } else if (strcmp(cmd, "poll") == 0) {
            int fd = sip_profile_registry_event_fd(user);
            if (fd < 0) {
                result(SIP_ERR_NOT_SUPPORTED);
                continue;
            }
            struct pollfd pfd = {fd, POLLIN, 0};
            int n = poll(&pfd, 1, (int)id);
            if (n < 0)
                result(SIP_ERR_GENERAL);
            else
                say("ok %s", n > 0 && (pfd.revents & POLLIN) ? "readable" : "idle");
        } else if (strcmp(cmd, "dispatch") == 0) {
            uint32_t ran = 0;
            rc = sip_profile_registry_dispatch(user, id, &ran);
            if (rc == SIP_OK)
                say("ok %u", ran);
            else
                result(rc);
        } else if (strcmp(cmd, "pid") == 0) {
            say("ok %d", (int)getpid());
        } else if (strcmp(cmd, "quit") == 0) {
            break;
        } else {
            say("err %d unknown command %s", SIP_ERR_ARGUMENT, cmd);
        }
    }
    close_all();
    say("ok bye");
    return 0;
}
