// sipprofile.hpp: header-only C++17 RAII wrapper over the sipprofile C API.
//
// Mirrors CSIPProfileRegistry (sipprofile::ProfileRegistry),
// CSIPManagedProfileRegistry (sipprofile::ManagedProfileRegistry) and
// CSIPProfile (sipprofile::Profile). Handles are move-only and freed by their
// destructors; a failing call throws sipprofile::Error carrying the status
// code (the Symbian "leave"). Observer callbacks are std::functions called on
// a library thread through noexcept trampolines that catch everything.
#ifndef SIPPROFILE_HPP
#define SIPPROFILE_HPP

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sipprofile.h"

namespace sipprofile {

/// A failed call: `code()` is the C status (negative) or a SIP status;
/// `message()` the library's description of the failure (what
/// sip_last_error_message() said: the key, argument, path or peer and the
/// reason), empty if none. what() holds both.
class Error : public std::runtime_error {
public:
    explicit Error(int32_t code, const std::string &what = "", const std::string &message = "")
        : std::runtime_error(describe(code, what, message)), code_(code), message_(message) {}
    int32_t code() const noexcept { return code_; }
    const std::string &message() const noexcept { return message_; }

private:
    static std::string describe(int32_t code, const std::string &what, const std::string &message) {
        std::string s = what.empty() ? "" : what + ": ";
        if (message.empty()) return s + sip_strerror(code);
        return s + message + " (" + sip_strerror(code) + ")";
    }
    int32_t code_;
    std::string message_;
};

/// Throws Error for a failed status, with this thread's last error message
/// (read at once, before any other call can replace it).
inline void check(int32_t rc, const char *what) {
    if (rc != SIP_OK) throw Error(rc, what, sip_last_error_message());
}

enum class Event : uint32_t {
    Created = SIP_PROFILE_CREATED,
    Updated = SIP_PROFILE_UPDATED,
    Registered = SIP_PROFILE_REGISTERED,
    Deregistered = SIP_PROFILE_DEREGISTERED,
    Destroyed = SIP_PROFILE_DESTROYED,
    ForciblyDisabled = SIP_PROFILE_FORCIBLY_DISABLED,
    AttemptFailed = SIP_PROFILE_ATTEMPT_FAILED,
};

enum class Status : uint32_t {
    Unregistered = SIP_PROFILE_STATUS_UNREGISTERED,
    UnregistrationInProgress = SIP_PROFILE_STATUS_UNREGISTRATION_IN_PROGRESS,
    RegistrationInProgress = SIP_PROFILE_STATUS_REGISTRATION_IN_PROGRESS,
    Registered = SIP_PROFILE_STATUS_REGISTERED,
};

struct ProfileType {
    uint32_t profile_class;
    std::string name;
    static ProfileType ietf() { return {SIP_PROFILE_CLASS_INTERNET, "IETF"}; }
    static ProfileType ims() { return {SIP_PROFILE_CLASS_IMS, "ims"}; }
    sip_profile_type_info c() const {
        sip_profile_type_info t{};
        t.profile_class = profile_class;
        name.copy(t.name, sizeof t.name - 1);
        return t;
    }
    bool operator==(const ProfileType &o) const { return profile_class == o.profile_class && name == o.name; }
};

/// Observer callbacks; either may be empty. Called on a library thread.
struct Observer {
    std::function<void(uint32_t profile_id, Event event)> on_event;
    std::function<void(uint32_t profile_id, int32_t error)> on_error;
};

namespace detail {
struct ProfileFree {
    void operator()(sip_profile *p) const noexcept { sip_profile_free(p); }
};
inline void on_event(void *ctx, uint32_t id, sip_profile_event e) noexcept {
    try {
        auto *o = static_cast<Observer *>(ctx);
        if (o->on_event) o->on_event(id, static_cast<Event>(e));
    } catch (...) {
        // An exception must never unwind into the library.
    }
}
inline void on_error(void *ctx, uint32_t id, int32_t err) noexcept {
    try {
        auto *o = static_cast<Observer *>(ctx);
        if (o->on_error) o->on_error(id, err);
    } catch (...) {
    }
}
inline std::string read_string(const std::function<int32_t(char *, size_t, size_t *)> &call, const char *what) {
    size_t len = 0;
    std::string s(128, '\0');
    int32_t rc = call(s.data(), s.size(), &len);
    if (rc == SIP_ERR_OVERFLOW) {
        s.assign(len + 1, '\0');
        rc = call(s.data(), s.size(), &len);
    }
    check(rc, what);
    s.resize(len);
    return s;
}
}  // namespace detail

/// A profile handle (CSIPProfile / CSIPManagedProfile). Move-only.
class Profile {
public:
    explicit Profile(sip_profile *p) : p_(p) {}
    sip_profile *get() const noexcept { return p_.get(); }

    uint32_t get_u32(uint32_t key) const {
        uint32_t v = 0;
        check(sip_profile_get_u32(get(), key, &v), "get_u32");
        return v;
    }
    bool get_bool(uint32_t key) const {
        bool v = false;
        check(sip_profile_get_bool(get(), key, &v), "get_bool");
        return v;
    }
    std::string get_str(uint32_t key) const {
        return detail::read_string(
            [&](char *b, size_t c, size_t *n) { return sip_profile_get_str(get(), key, b, c, n); }, "get_str");
    }
    std::optional<std::string> find_str(uint32_t key) const {
        try {
            return get_str(key);
        } catch (const Error &e) {
            if (e.code() == SIP_ERR_NOT_FOUND) return std::nullopt;
            throw;
        }
    }
    std::vector<std::string> get_str_array(uint32_t key) const {
        sip_str_list *l = nullptr;
        check(sip_profile_get_str_array(get(), key, &l), "get_str_array");
        std::unique_ptr<sip_str_list, void (*)(sip_str_list *)> guard(l, sip_str_list_free);
        std::vector<std::string> out;
        for (size_t i = 0; i < sip_str_list_len(l); i++) out.emplace_back(sip_str_list_get(l, i));
        return out;
    }
    std::string get_server(uint32_t server, uint32_t key) const {
        return detail::read_string(
            [&](char *b, size_t c, size_t *n) { return sip_profile_get_server_str(get(), server, key, b, c, n); },
            "get_server_str");
    }
    void set_u32(uint32_t key, uint32_t v) { check(sip_profile_set_u32(get(), key, v), "set_u32"); }
    void set_bool(uint32_t key, bool v) { check(sip_profile_set_bool(get(), key, v), "set_bool"); }
    void set_str(uint32_t key, const std::string &v) { check(sip_profile_set_str(get(), key, v.c_str()), "set_str"); }
    void set_str_array(uint32_t key, const std::vector<std::string> &v) {
        std::vector<const char *> ptrs;
        for (auto &s : v) ptrs.push_back(s.c_str());
        check(sip_profile_set_str_array(get(), key, ptrs.data(), ptrs.size()), "set_str_array");
    }
    void set_server(uint32_t server, uint32_t key, const std::string &v) {
        check(sip_profile_set_server_str(get(), server, key, v.c_str()), "set_server_str");
    }

    uint32_t id() const { return get_u32(SIP_KEY_PROFILE_ID); }
    Status status() const noexcept { return static_cast<Status>(sip_profile_registration_status(get())); }
    bool context_active() const noexcept { return sip_profile_is_context_active(get()); }
    uint32_t context_id() const noexcept { return sip_profile_context_id(get()); }
    ProfileType type() const {
        sip_profile_type_info t{};
        check(sip_profile_type(get(), &t), "type");
        return {t.profile_class, t.name};
    }
    Profile clone() const {
        sip_profile *out = nullptr;
        check(sip_profile_clone(get(), &out), "clone");
        return Profile(out);
    }

private:
    std::unique_ptr<sip_profile, detail::ProfileFree> p_;
};

namespace detail {
inline std::vector<Profile> take_all(sip_profile_list *l) {
    std::unique_ptr<sip_profile_list, void (*)(sip_profile_list *)> guard(l, sip_profile_list_free);
    std::vector<Profile> out;
    for (size_t i = 0; i < sip_profile_list_len(l); i++) out.emplace_back(sip_profile_list_take(l, i));
    return out;
}

/// The functions both registries have, over the C prefix of each.
template <typename R, typename Fns>
class RegistryBase {
public:
    RegistryBase(const char *store, Observer observer, uint32_t flags = 0)
        : observer_(std::make_unique<Observer>(std::move(observer))) {
        // Only the callbacks asked for: a registry with none starts no thread.
        sip_profile_registry_observer o{observer_.get(), observer_->on_event ? on_event : nullptr,
                                        observer_->on_error ? on_error : nullptr};
        R *r = nullptr;
        check(Fns::make(store, &o, flags, &r), "open registry");
        r_.reset(r);
    }
    R *get() const noexcept { return r_.get(); }

    /// With SIP_REGISTRY_APP_DISPATCH: the fd to poll (POLLIN while callbacks
    /// wait; owned by the registry), else -1.
    int event_fd() const noexcept { return Fns::event_fd(get()); }
    /// With SIP_REGISTRY_APP_DISPATCH: runs up to `max` waiting callbacks
    /// (0: all) on this thread; returns how many ran.
    uint32_t dispatch(uint32_t max = 0) {
        uint32_t ran = 0;
        check(Fns::dispatch(get(), max, &ran), "dispatch");
        return ran;
    }

    Profile profile(uint32_t id) const { return one(Fns::profile(get(), id)); }
    Profile default_profile() const {
        sip_profile *p = nullptr;
        check(Fns::default_profile(get(), &p), "default_profile");
        return Profile(p);
    }
    std::vector<Profile> profiles() const {
        sip_profile_list *l = nullptr;
        check(Fns::profiles(get(), &l), "profiles");
        return take_all(l);
    }
    std::vector<Profile> profiles_by_aor(const std::string &aor) const {
        sip_profile_list *l = nullptr;
        check(Fns::profiles_by_aor(get(), aor.c_str(), &l), "profiles_by_aor");
        return take_all(l);
    }
    std::vector<Profile> profiles_by_type(const ProfileType &t) const {
        sip_profile_list *l = nullptr;
        auto c = t.c();
        check(Fns::profiles_by_type(get(), &c, &l), "profiles_by_type");
        return take_all(l);
    }
    int32_t last_registration_error(const Profile &p) const noexcept {
        return Fns::last_error(get(), p.get());
    }

protected:
    struct Deleter {
        void operator()(R *r) const noexcept { Fns::free(r); }
    };
    static Profile one(std::pair<int32_t, sip_profile *> r) {
        check(r.first, "profile");
        return Profile(r.second);
    }
    // The registry is freed before the observer it points to.
    std::unique_ptr<Observer> observer_;
    std::unique_ptr<R, Deleter> r_;
};

struct UserFns {
    static int32_t make(const char *s, const sip_profile_registry_observer *o, uint32_t f, sip_profile_registry **r) {
        return sip_profile_registry_new_with_flags(s, o, f, r);
    }
    static void free(sip_profile_registry *r) { sip_profile_registry_free(r); }
    static int event_fd(const sip_profile_registry *r) { return sip_profile_registry_event_fd(r); }
    static int32_t dispatch(sip_profile_registry *r, uint32_t max, uint32_t *ran) {
        return sip_profile_registry_dispatch(r, max, ran);
    }
    static std::pair<int32_t, sip_profile *> profile(sip_profile_registry *r, uint32_t id) {
        sip_profile *p = nullptr;
        int32_t rc = sip_profile_registry_profile(r, id, &p);
        return {rc, p};
    }
    static int32_t default_profile(sip_profile_registry *r, sip_profile **p) {
        return sip_profile_registry_default_profile(r, p);
    }
    static int32_t profiles(sip_profile_registry *r, sip_profile_list **l) { return sip_profile_registry_profiles(r, l); }
    static int32_t profiles_by_aor(sip_profile_registry *r, const char *a, sip_profile_list **l) {
        return sip_profile_registry_profiles_by_aor(r, a, l);
    }
    static int32_t profiles_by_type(sip_profile_registry *r, const sip_profile_type_info *t, sip_profile_list **l) {
        return sip_profile_registry_profiles_by_type(r, t, l);
    }
    static int32_t last_error(const sip_profile_registry *r, const sip_profile *p) {
        return sip_profile_registry_last_registration_error(r, p);
    }
};

struct ManagedFns {
    static int32_t make(const char *s, const sip_profile_registry_observer *o, uint32_t f,
                        sip_managed_profile_registry **r) {
        return sip_managed_profile_registry_new_with_flags(s, o, f, r);
    }
    static void free(sip_managed_profile_registry *r) { sip_managed_profile_registry_free(r); }
    static int event_fd(const sip_managed_profile_registry *r) { return sip_managed_profile_registry_event_fd(r); }
    static int32_t dispatch(sip_managed_profile_registry *r, uint32_t max, uint32_t *ran) {
        return sip_managed_profile_registry_dispatch(r, max, ran);
    }
    static std::pair<int32_t, sip_profile *> profile(sip_managed_profile_registry *r, uint32_t id) {
        sip_profile *p = nullptr;
        int32_t rc = sip_managed_profile_registry_profile(r, id, &p);
        return {rc, p};
    }
    static int32_t default_profile(sip_managed_profile_registry *r, sip_profile **p) {
        return sip_managed_profile_registry_default_profile(r, p);
    }
    static int32_t profiles(sip_managed_profile_registry *r, sip_profile_list **l) {
        return sip_managed_profile_registry_profiles(r, l);
    }
    static int32_t profiles_by_aor(sip_managed_profile_registry *r, const char *a, sip_profile_list **l) {
        return sip_managed_profile_registry_profiles_by_aor(r, a, l);
    }
    static int32_t profiles_by_type(sip_managed_profile_registry *r, const sip_profile_type_info *t,
                                    sip_profile_list **l) {
        return sip_managed_profile_registry_profiles_by_type(r, t, l);
    }
    static int32_t last_error(const sip_managed_profile_registry *r, const sip_profile *p) {
        return sip_managed_profile_registry_last_registration_error(r, p);
    }
};
}  // namespace detail

/// CSIPProfileRegistry: enables and disables profiles. Move-only.
class ProfileRegistry : public detail::RegistryBase<sip_profile_registry, detail::UserFns> {
public:
    /// `flags`: SIP_REGISTRY_APP_DISPATCH, SIP_REGISTRY_ATTEMPT_EVENTS.
    explicit ProfileRegistry(const char *store = nullptr, Observer observer = {}, uint32_t flags = 0)
        : RegistryBase(store, std::move(observer), flags) {}
    void enable(Profile &p) { check(sip_profile_registry_enable(get(), p.get()), "enable"); }
    void disable(Profile &p) { check(sip_profile_registry_disable(get(), p.get()), "disable"); }
    bool is_enabled(const Profile &p) const noexcept { return sip_profile_registry_is_enabled(get(), p.get()); }
    void refresh_enable(Profile &p) { check(sip_profile_registry_refresh_enable(get(), p.get()), "refresh_enable"); }
    void force_disable(Profile &p) { check(sip_profile_registry_force_disable(get(), p.get()), "force_disable"); }
};

/// CSIPManagedProfileRegistry: creates, saves and destroys profiles. Move-only.
class ManagedProfileRegistry : public detail::RegistryBase<sip_managed_profile_registry, detail::ManagedFns> {
public:
    explicit ManagedProfileRegistry(const char *store = nullptr, Observer observer = {}, uint32_t flags = 0)
        : RegistryBase(store, std::move(observer), flags) {}
    Profile create(const ProfileType &t = ProfileType::ietf()) {
        auto c = t.c();
        sip_profile *p = nullptr;
        check(sip_managed_profile_registry_create(get(), &c, &p), "create");
        return Profile(p);
    }
    void save(Profile &p) { check(sip_managed_profile_registry_save(get(), p.get()), "save"); }
    /// Saves all of them in one durable transaction, all or nothing.
    void save_all(std::vector<Profile> &ps) {
        std::vector<sip_profile *> raw;
        raw.reserve(ps.size());
        for (auto &p : ps) raw.push_back(p.get());
        check(sip_managed_profile_registry_save_all(get(), raw.data(), raw.size()), "save_all");
    }
    void destroy(Profile &p) { check(sip_managed_profile_registry_destroy(get(), p.get()), "destroy"); }
    bool is_in_use(const Profile &p) const {
        bool v = false;
        check(sip_managed_profile_registry_is_in_use(get(), p.get(), &v), "is_in_use");
        return v;
    }
};

/// Log levels of `sip_set_log_callback`.
enum class LogLevel : int32_t { Error = 1, Warn = 2, Info = 3, Debug = 4, Trace = 5 };

/// Receives one log line; called on whichever library thread logs.
using LogHandler = std::function<void(LogLevel level, const char *message)>;

namespace detail {
struct LogState {
    std::mutex lock;
    std::shared_ptr<const LogHandler> handler;
};
// One per process (an inline function's static), as the C library's logger is.
inline LogState &log_state() {
    static LogState state;
    return state;
}
inline void on_log(void *, int32_t level, const char *message) noexcept {
    std::shared_ptr<const LogHandler> h;
    {
        std::lock_guard<std::mutex> g(log_state().lock);
        h = log_state().handler;
    }
    // A copy: a handler replaced meanwhile lives until this call returns.
    if (h && *h) {
        try {
            (*h)(static_cast<LogLevel>(level), message ? message : "");
        } catch (...) {
        }
    }
}
}  // namespace detail

/// Sends the library's log lines at `max_level` and below to `handler`
/// (an exception it throws is dropped). It runs on a library thread, possibly
/// with a library lock held: keep it short and call no sipprofile function
/// from it. An empty handler logs to stderr again (filtered by
/// `$SIPPROFILE_LOG`, default warn).
inline void set_log_handler(LogHandler handler, LogLevel max_level = LogLevel::Info) {
    bool on = static_cast<bool>(handler);
    {
        std::lock_guard<std::mutex> g(detail::log_state().lock);
        detail::log_state().handler = on ? std::make_shared<const LogHandler>(std::move(handler)) : nullptr;
    }
    sip_set_log_callback(on ? detail::on_log : nullptr, nullptr, static_cast<int32_t>(max_level));
}

}  // namespace sipprofile

#endif
