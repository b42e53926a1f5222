"""Exceptions carry the library's description of the failed call
(sip_last_error_message): the key, argument or path, and why. No peer needed."""

import os
import threading

import pytest

import sipprofile as sp
from sipprofile import Key, Server


def test_bad_setter_names_the_key_and_the_reason(store):
    with sp.ManagedProfileRegistry(store) as m:
        p = m.create(sp.IETF)
        with pytest.raises(sp.ArgumentError) as e:
            p.aor = "alice"
        assert e.value.code == sp.Code.ARGUMENT
        assert "SIP_KEY_USER_AOR (7)" in e.value.message
        assert '"alice" is not a SIP URI' in e.value.message
        assert e.value.message in str(e.value)
        with pytest.raises(sp.NotFoundError) as e:
            p.set(Key.USER_AOR, 5)
        assert e.value.message == "key SIP_KEY_USER_AOR (7) is a string key: use sip_profile_set_str"
        with pytest.raises(sp.NotFoundError) as e:
            p.set(Key.PROFILE_ID, 5)
        assert "read-only" in e.value.message
        with pytest.raises(sp.ArgumentError) as e:
            p.set_server(7, Key.SERVER_ADDRESS, "sip:x")
        assert "server 7" in e.value.message
        with pytest.raises(sp.PermissionDeniedError) as e:
            p.get_server(Server.REGISTRAR, Key.DIGEST_PASSWORD)
        assert "write-only" in e.value.message


def test_enable_says_what_is_missing(store):
    with sp.ManagedProfileRegistry(store) as m:
        p = m.create(sp.IETF)
        p.aor = "sip:alice@example.com"
        m.save(p)
        with sp.ProfileRegistry(store) as r:
            q = r.profile(p.id)
            with pytest.raises(sp.ArgumentError) as e:
                r.enable(q)
            assert f"profile {p.id} cannot register" in e.value.message
            assert "no registrar" in e.value.message and "AOR" not in e.value.message


def test_store_failure_names_the_path(tmp_path):
    link = tmp_path / "link.db"
    os.symlink(tmp_path / "real.db", link)
    with pytest.raises(sp.AccessDeniedError) as e:
        sp.ManagedProfileRegistry(str(link))
    assert str(link) in e.value.message and "symbolic link" in e.value.message


def test_message_is_per_thread(store):
    with sp.ManagedProfileRegistry(store) as m:
        p = m.create(sp.IETF)
        with pytest.raises(sp.ArgumentError):
            p.aor = "alice"
        seen = []
        t = threading.Thread(target=lambda: seen.append(sp.last_error_message()))
        t.start()
        t.join()
        assert seen == [""]
        assert "SIP_KEY_USER_AOR" in sp.last_error_message()
