"""The profile server is shared by every process of the store (contract
§8.1), and callbacks can run on the application's own thread or asyncio loop
(§8.2): several real Python processes against Kamailio."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import sipprofile as sp

CHILD = textwrap.dedent("""
    import sys, time
    import sipprofile as sp
    store, pid = sys.argv[1], int(sys.argv[2])
    r = sp.ProfileRegistry(store)
    p = r.profile(pid)
    r.enable(p)
    r.wait_registered(p, timeout=10)
    print("registered", flush=True)
    sys.stdin.readline()          # held until the parent says, or killed
""")


def provision(store, registrar, user="alice", password="alicepw"):
    with sp.ManagedProfileRegistry(store) as m:
        p = m.create(sp.IETF)
        p.aor = f"sip:{user}@sipprofile.test"
        p.registrar = registrar
        p.set_server(sp.Server.REGISTRAR, sp.Key.DIGEST_USER_NAME, user)
        p.set_server(sp.Server.REGISTRAR, sp.Key.DIGEST_PASSWORD, password)
        m.save(p)
        return p.id


def wait_until(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def start_child(store, pid):
    child = subprocess.Popen([sys.executable, "-c", CHILD, store, str(pid)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "registered"
    return child


def test_two_processes_one_registration_and_a_killed_client_releases_it(kamailio, store):
    pid = provision(store, kamailio.registrar)
    with sp.ProfileRegistry(store) as r:
        p = r.profile(pid)
        child = start_child(store, pid)
        try:
            # The child registered it: this process sees it registered at once
            # when it enables too, and the registrar holds one binding.
            r.enable(p)
            assert p.status == sp.Status.REGISTERED
            contact = p.registered_contact
            user = contact.split("@")[0].split(":")[-1]
            assert kamailio.bindings().count(f"sip:{user}@") == 1, kamailio.bindings()
            r.disable(p)
        finally:
            child.kill()
            child.wait()
        # The child died holding the only enable: its binding goes.
        assert wait_until(lambda: "sipprofile.test" not in kamailio.bindings())


def test_changes_in_one_process_reach_another(kamailio, store):
    pid = provision(store, kamailio.registrar)
    seen = []
    with sp.ProfileRegistry(store, observer=seen.append) as r:
        p = r.profile(pid)
        subprocess.run([sys.executable, "-c", textwrap.dedent("""
            import sys, sipprofile as sp
            with sp.ManagedProfileRegistry(sys.argv[1]) as m:
                q = m.profile(int(sys.argv[2]))
                q.provider_name = "from another process"
                m.save(q)
        """), store, str(pid)], check=True)
        assert wait_until(lambda: any(n.event == sp.Event.UPDATED for n in seen))
        assert p.provider_name == "from another process"
        # The other process's save kept the password: it still registers.
        r.enable(p)
        r.wait_registered(p, timeout=10)
        r.disable(p)


def test_asyncio_gets_events_on_the_loops_thread(kamailio, store):
    pid = provision(store, kamailio.registrar)
    threads = set()

    def observer(note):
        threads.add(os.getpid() and __import__("threading").get_ident())

    async def main():
        r = sp.ProfileRegistry(store, observer=observer, app_dispatch=True)
        try:
            assert r.event_fd >= 0
            p = r.profile(pid)
            r.enable(p)
            async def first_registered():
                async for note in r.aevents():
                    if note.profile_id == pid and note.event == sp.Event.REGISTERED:
                        return note
            note = await asyncio.wait_for(first_registered(), 10)
            assert note.event == sp.Event.REGISTERED
            r.disable(p)
        finally:
            r.close()

    asyncio.run(main())
    assert threads == {__import__("threading").get_ident()}


def test_dispatch_without_app_dispatch_is_not_supported(store):
    with sp.ProfileRegistry(store) as r:
        assert r.event_fd == -1
        try:
            r.dispatch()
            raise AssertionError("dispatch must fail")
        except sp.SipProfileError as e:
            assert e.code == -5


def test_save_all_is_one_transaction(store):
    with sp.ManagedProfileRegistry(store) as m:
        ps = []
        for i in range(3):
            p = m.create(sp.IETF)
            p.aor = f"sip:u{i}@sipprofile.test"
            ps.append(p)
        m.save_all(ps)
        assert sorted(p.id for p in ps) == [1, 2, 3]
        assert len(m.profiles()) == 3
