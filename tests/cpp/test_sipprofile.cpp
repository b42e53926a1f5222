// C++ wrapper test against Kamailio: RAII, exceptions with codes, observers
// as std::function (one throwing), move-only handles.
//   test_sipprofile STORE REGISTRAR
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <type_traits>

#include "sipprofile.hpp"

using namespace sipprofile;

static int failures = 0;
#define EXPECT(c)                                                         \
    do {                                                                  \
        if (!(c)) {                                                       \
            std::fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                   \
        }                                                                 \
    } while (0)

static_assert(!std::is_copy_constructible_v<Profile>, "profiles are move-only");
static_assert(std::is_move_constructible_v<Profile>, "profiles move");
static_assert(!std::is_copy_constructible_v<ProfileRegistry>, "registries are move-only");

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *store = argv[1];
    const std::string registrar = argv[2];
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::pair<uint32_t, Event>> events;
    std::vector<int32_t> errors;
    // The library's log through a std::function, from the first call on:
    // opening the store's first registry starts its profile server.
    std::vector<std::pair<LogLevel, std::string>> logged;
    set_log_handler(
        [&](LogLevel level, const char *line) {
            std::lock_guard<std::mutex> g(m);
            logged.emplace_back(level, line);
        },
        LogLevel::Trace);

    uint32_t id = 0;
    {
        ManagedProfileRegistry managed(store);
        Profile p = managed.create(ProfileType::ietf());
        p.set_str(SIP_KEY_USER_AOR, "sip:alice@sipprofile.test");
        p.set_server(SIP_SERVER_REGISTRAR, SIP_KEY_SERVER_ADDRESS, registrar);
        p.set_server(SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_USER_NAME, "alice");
        p.set_server(SIP_SERVER_REGISTRAR, SIP_KEY_DIGEST_PASSWORD, "alicepw");
        p.set_str_array(SIP_KEY_HEADERS, {"X-From-Cpp: 1"});
        managed.save(p);
        id = p.id();
        EXPECT(id > 0);
        EXPECT(p.get_str_array(SIP_KEY_HEADERS).size() == 1);
        EXPECT(p.type() == ProfileType::ietf());
        try {
            p.set_str(SIP_KEY_USER_AOR, "not a uri");
            EXPECT(false);
        } catch (const Error &e) {
            EXPECT(e.code() == SIP_ERR_ARGUMENT);
            // The library's message names the key and the reason, in what() too.
            EXPECT(e.message().find("SIP_KEY_USER_AOR (7)") != std::string::npos);
            EXPECT(e.message().find("\"not a uri\" is not a SIP URI") != std::string::npos);
            EXPECT(std::string(e.what()).find(e.message()) != std::string::npos);
        }
        try {
            managed.profile(0);
            EXPECT(false);
        } catch (const Error &e) {
            EXPECT(e.code() == SIP_ERR_ARGUMENT);
        }
        EXPECT(!p.find_str(SIP_KEY_REGISTERED_CONTACT).has_value());
        Profile moved = std::move(p);  // handles move
        EXPECT(moved.id() == id);
        Profile copy = moved.clone();
        EXPECT(copy.id() == 0);
    }

    Observer obs;
    obs.on_event = [&](uint32_t pid, Event e) {
        std::lock_guard<std::mutex> g(m);
        events.emplace_back(pid, e);
        cv.notify_all();
        if (e == Event::Deregistered) throw std::runtime_error("observer bug: must not reach the library");
    };
    obs.on_error = [&](uint32_t, int32_t err) {
        std::lock_guard<std::mutex> g(m);
        errors.push_back(err);
        cv.notify_all();
    };
    auto wait_event = [&](Event want) {
        std::unique_lock<std::mutex> g(m);
        return cv.wait_for(g, std::chrono::seconds(10), [&] {
            for (auto &ev : events)
                if (ev.first == id && ev.second == want) return true;
            return false;
        });
    };
    {
        ProfileRegistry registry(store, obs);
        Profile p = registry.profile(id);
        registry.enable(p);
        EXPECT(registry.is_enabled(p));
        EXPECT(wait_event(Event::Registered));
        EXPECT(p.status() == Status::Registered);
        EXPECT(p.context_active());
        EXPECT(p.context_id() != 0);
        EXPECT(p.find_str(SIP_KEY_REGISTERED_CONTACT).has_value());
        try {
            registry.enable(p);
            EXPECT(false);
        } catch (const Error &e) {
            EXPECT(e.code() == SIP_ERR_ARGUMENT);
        }
        registry.disable(p);
        EXPECT(wait_event(Event::Deregistered));
        EXPECT(registry.last_registration_error(p) == SIP_OK);
        EXPECT(registry.profiles_by_aor("sip:alice@SIPPROFILE.test").size() == 1);
        EXPECT(registry.profiles().size() == 1);
    }  // registry and profile freed here, in any order

    // Callbacks on this thread: the event fd polls readable while some wait,
    // dispatch() runs them here, and no library thread ever calls them.
    {
        std::vector<Event> seen;
        std::thread::id ran_on;
        Observer here;
        here.on_event = [&](uint32_t pid, Event e) {
            if (pid == id) seen.push_back(e);
            ran_on = std::this_thread::get_id();
        };
        ProfileRegistry registry(store, here, SIP_REGISTRY_APP_DISPATCH);
        EXPECT(registry.event_fd() >= 0);
        Profile p = registry.profile(id);
        registry.enable(p);
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::find(seen.begin(), seen.end(), Event::Registered) == seen.end() &&
               std::chrono::steady_clock::now() < until) {
            pollfd pfd{registry.event_fd(), POLLIN, 0};
            if (poll(&pfd, 1, 100) == 1) EXPECT(registry.dispatch() > 0);
        }
        EXPECT(std::find(seen.begin(), seen.end(), Event::Registered) != seen.end());
        EXPECT(ran_on == std::this_thread::get_id());
        pollfd pfd{registry.event_fd(), POLLIN, 0};
        EXPECT(poll(&pfd, 1, 0) == 0);  // nothing left waiting
        EXPECT(registry.dispatch() == 0);
        registry.disable(p);
    }
    set_log_handler({});  // back to stderr: nothing more reaches `logged`
    {
        std::lock_guard<std::mutex> g(m);
        bool saw_start = false;
        for (auto &entry : logged) {
            if (entry.first == LogLevel::Debug && entry.second.find("starting ") == 0 &&
                entry.second.find("sipprofile-server") != std::string::npos)
                saw_start = true;
            EXPECT(entry.second.find("alicepw") == std::string::npos);
        }
        EXPECT(saw_start);
        size_t n = logged.size();
        { ManagedProfileRegistry again(store); }
        EXPECT(logged.size() == n);
    }
    if (failures) {
        std::fprintf(stderr, "cpp: %d failure(s)\n", failures);
        return 1;
    }
    std::printf("cpp: all checks passed\n");
    return 0;
}
