import gc
import logging
import time

import pytest

import sipprofile as sp
from sipprofile import Event, Key, Server, Status


def provision(store, registrar, user="alice", password="alicepw"):
    with sp.ManagedProfileRegistry(store) as m:
        p = m.create(sp.IETF)
        p.aor = f"sip:{user}@sipprofile.test"
        p.registrar = registrar
        p.set_server(Server.REGISTRAR, Key.DIGEST_USER_NAME, user)
        p.set_server(Server.REGISTRAR, Key.DIGEST_PASSWORD, password)
        p.expires = 300
        m.save(p)
        return p.id


def test_register_and_deregister_with_events(kamailio, store):
    seen = []
    pid = provision(store, kamailio.registrar)
    with sp.ProfileRegistry(store, observer=seen.append) as r:
        p = r.profile(pid)
        r.enable(p)
        r.wait_registered(p, timeout=10)
        assert p.status == Status.REGISTERED and p.is_registered and p.is_context_active
        contact_user = p.get_str(Key.CONTACT_HEADER_USER)
        assert contact_user in p.registered_contact
        assert contact_user in kamailio.bindings()
        r.disable(p)
        assert r.wait_for(lambda: p.status == Status.UNREGISTERED, 10)
        assert contact_user not in kamailio.bindings()
    kinds = [n.event for n in seen if n.profile_id == pid]
    assert Event.REGISTERED in kinds and Event.DEREGISTERED in kinds


def test_bad_password_raises_with_the_sip_status(kamailio, store):
    pid = provision(store, kamailio.registrar, password="wrong")
    with sp.ProfileRegistry(store) as r:
        p = r.profile(pid)
        r.enable(p)
        with pytest.raises(sp.SipProfileError) as e:
            r.wait_registered(p, timeout=10)
        assert e.value.code == 401
        assert not r.is_enabled(p)
        assert r.last_registration_error(p) == 401


def test_errors_are_typed_and_carry_the_code(store):
    with sp.ManagedProfileRegistry(store) as m:
        with pytest.raises(sp.ArgumentError) as e:
            m.profile(0)
        assert e.value.code == -6
        with pytest.raises(sp.NotFoundError):
            m.profile(12345)
        p = m.create()
        with pytest.raises(sp.ArgumentError):
            p.aor = "not a uri"
        with pytest.raises(sp.AccessDeniedError):
            p.set(Key.CONTACT_HEADER_USER, "x")
        with pytest.raises(sp.PermissionDeniedError):
            p.get_server(Server.REGISTRAR, Key.DIGEST_PASSWORD)
        p.set(Key.HEADERS, ["X-A: 1", "X-B: 2"])
        assert p.get_str_array(Key.HEADERS) == ["X-A: 1", "X-B: 2"]
        long = "x" * 1000
        p.provider_name = long  # longer than the first buffer
        assert p.provider_name == long
        assert m.supported_types() == [sp.IETF, sp.IMS]


def test_events_iterator_and_destroy_in_use(kamailio, store):
    pid = provision(store, kamailio.registrar)
    with sp.ManagedProfileRegistry(store) as m, sp.ProfileRegistry(store) as r:
        p = r.profile(pid)
        r.enable(p)
        r.wait_registered(p)
        mp = m.profile(pid)
        assert m.is_in_use(mp)
        with pytest.raises(sp.InUseError):
            m.destroy(mp)
        r.disable(p)
        notes = [n.event for n in r.events(timeout=1.0)]
        assert Event.REGISTERED in notes and Event.DEREGISTERED in notes


def test_profiles_are_freed_by_gc(kamailio, store):
    pid = provision(store, kamailio.registrar)
    with sp.ProfileRegistry(store) as r:
        p = r.profile(pid)
        r.enable(p)
        r.wait_registered(p)
        user = p.get_str(Key.CONTACT_HEADER_USER)
        del p
        gc.collect()  # the last handle is gone: disabled, de-registered
        deadline = time.time() + 5
        while user in kamailio.bindings() and time.time() < deadline:
            time.sleep(0.1)
        assert user not in kamailio.bindings()


def test_registry_freed_while_events_flow(kamailio, store):
    ids = [provision(store, kamailio.registrar) for _ in range(5)]
    count = []
    r = sp.ProfileRegistry(store, observer=lambda n: (count.append(n), time.sleep(0.01)))
    handles = [r.profile(i) for i in ids]
    for h in handles:
        r.enable(h)
    time.sleep(0.05)
    r.close()  # while REGISTERED events are being delivered
    n = len(count)
    time.sleep(0.5)
    assert len(count) == n  # nothing after close returned
    with pytest.raises(sp.BadHandleError):
        r.enable(handles[0])
    assert handles[0].id == ids[0]  # handles outlive their registry


def test_observer_exceptions_do_not_break_delivery(kamailio, store):
    pid = provision(store, kamailio.registrar)

    def bad(note):
        raise RuntimeError("observer bug")

    with sp.ProfileRegistry(store, observer=bad) as r:
        p = r.profile(pid)
        r.enable(p)
        r.wait_registered(p)
        r.disable(p)
        # The observer raised on every event; delivery went on regardless.
        notes = [n.event for n in r.events(timeout=1.0) if n.profile_id == pid]
        assert Event.REGISTERED in notes and Event.DEREGISTERED in notes


def test_wait_registered_after_the_password_is_fixed(kamailio, store):
    # Only an observer: nothing reads events(), and an old 401 must not count.
    seen = []
    pid = provision(store, kamailio.registrar, password="wrong")
    with sp.ProfileRegistry(store, observer=seen.append) as r:
        p = r.profile(pid)
        r.enable(p)
        with pytest.raises(sp.SipProfileError) as e:
            r.wait_registered(p, timeout=10)
        assert e.value.code == 401
        with sp.ManagedProfileRegistry(store) as m:
            mp = m.profile(pid)
            mp.set_server(Server.REGISTRAR, Key.DIGEST_PASSWORD, "alicepw")
            m.save(mp)
        r.enable(p)
        r.wait_registered(p, timeout=10)
        assert p.status == Status.REGISTERED
        assert any(n.error == 401 for n in seen)


def test_unread_events_stay_bounded(store):
    with sp.ProfileRegistry(store, observer=lambda n: None) as r:
        n = 3 * r.EVENTS_KEPT
        for i in range(n):
            r._deliver(sp.Notification(i, event=Event.UPDATED))
        assert r._queue.qsize() == r.EVENTS_KEPT
        # The newest are kept, in order.
        kept = [note.profile_id for note in r.events(timeout=0)]
        assert kept == list(range(n - r.EVENTS_KEPT, n))


def test_log_routes_to_the_logging_module(kamailio, store, caplog):
    # From the first call on: opening the store's first registry starts its
    # profile server, which the library logs (debug).
    log = sp.log_to_logging(max_level=sp.LogLevel.TRACE)
    try:
        with caplog.at_level(sp.TRACE, logger="sipprofile"):
            pid = provision(store, kamailio.registrar)
            with sp.ProfileRegistry(store) as r:
                p = r.profile(pid)
                r.enable(p)
                r.wait_registered(p, timeout=10)
                r.disable(p)
                assert r.wait_for(lambda: p.status == Status.UNREGISTERED, 10)
    finally:
        sp.set_log_handler(None)
    assert log.name == "sipprofile"
    lines = [rec for rec in caplog.records if rec.name == "sipprofile"]
    assert any(rec.getMessage().startswith("starting ") and "sipprofile-server" in rec.getMessage()
               and rec.levelno == logging.DEBUG for rec in lines), [rec.getMessage()[:80] for rec in lines]
    assert all("alicepw" not in rec.getMessage() for rec in lines)
    # Undone: nothing more reaches the logger.
    caplog.clear()
    with sp.ManagedProfileRegistry(store) as m:
        m.profile(pid)
    assert not [rec for rec in caplog.records if rec.name == "sipprofile"]
