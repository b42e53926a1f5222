"""ctypes declarations of include/sipprofile.h: every function's argtypes and
restype (tests/test_header.py checks them against the header)."""

from __future__ import annotations

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char, c_char_p,
                    c_int, c_int32, c_size_t, c_uint32, c_void_p)
from pathlib import Path


class sip_profile_type_info(Structure):
    _fields_ = [("profile_class", c_uint32), ("name", c_char * 26)]


EVENT_CB = CFUNCTYPE(None, c_void_p, c_uint32, c_uint32)
ERROR_CB = CFUNCTYPE(None, c_void_p, c_uint32, c_int32)
LOG_CB = CFUNCTYPE(None, c_void_p, c_int32, c_char_p)


class sip_profile_registry_observer(Structure):
    _fields_ = [("context", c_void_p), ("event_occurred", EVENT_CB), ("error_occurred", ERROR_CB)]


HERE = Path(__file__).resolve().parent
BUNDLED = HERE / "libsipprofile.so.0"  # put there by `pip install` (setup.py)

_HOW = ("Point SIPPROFILE_LIB at a libsipprofile.so (in a clone of the repository, "
        "`cargo build --release --lib` makes target/release/libsipprofile.so), "
        "reinstall this package from a clone with `pip install ./bindings/python` "
        "(it builds and bundles the library; Rust needed), "
        "or install the library system-wide (`make install`, or the .deb of scripts/deb.sh).")


def _load() -> "tuple[ctypes.CDLL, str]":
    """The library: $SIPPROFILE_LIB if set, else the one bundled in this
    package, else libsipprofile.so.0 on the loader path."""
    env = os.environ.get("SIPPROFILE_LIB")
    if env:
        try:
            return ctypes.CDLL(env), env
        except OSError as e:
            raise ImportError(f"sipprofile: SIPPROFILE_LIB={env!r} cannot be loaded ({e}). {_HOW}") from e
    if BUNDLED.exists():
        try:
            return ctypes.CDLL(str(BUNDLED)), str(BUNDLED)
        except OSError as e:
            raise ImportError(f"sipprofile: the bundled {BUNDLED} cannot be loaded ({e}). {_HOW}") from e
    try:
        return ctypes.CDLL("libsipprofile.so.0"), "libsipprofile.so.0"
    except OSError as e:
        raise ImportError(
            "sipprofile: libsipprofile.so.0 not found: this package has no bundled library "
            f"(installed with SIPPROFILE_NO_BUILD?) and the loader found none ({e}). {_HOW}") from e


# CDLL (not PyDLL): calls release the GIL, so a free that waits for a running
# callback (which needs the GIL) cannot deadlock.
lib, LIBRARY_PATH = _load()

P = c_void_p  # every opaque handle
PP = POINTER(c_void_p)
TYPE = POINTER(sip_profile_type_info)
OBS = POINTER(sip_profile_registry_observer)

SIGNATURES = {
    "sip_version": ([], c_char_p),
    "sip_strerror": ([c_int32], c_char_p),
    "sip_last_error_message": ([], c_char_p),
    "sip_set_log_callback": ([LOG_CB, c_void_p, c_int32], None),
    "sip_network_changed": ([], None),
    "sip_profile_registry_new": ([c_char_p, OBS, PP], c_int32),
    "sip_profile_registry_free": ([P], None),
    "sip_managed_profile_registry_new": ([c_char_p, OBS, PP], c_int32),
    "sip_managed_profile_registry_free": ([P], None),
    "sip_profile_registry_enable": ([P, P], c_int32),
    "sip_profile_registry_disable": ([P, P], c_int32),
    "sip_profile_registry_is_enabled": ([P, P], c_bool),
    "sip_profile_registry_refresh_enable": ([P, P], c_int32),
    "sip_profile_registry_force_disable": ([P, P], c_int32),
    "sip_managed_profile_registry_create": ([P, TYPE, PP], c_int32),
    "sip_managed_profile_registry_save": ([P, P], c_int32),
    "sip_managed_profile_registry_destroy": ([P, P], c_int32),
    "sip_managed_profile_registry_is_in_use": ([P, P, POINTER(c_bool)], c_int32),
    "sip_profile_free": ([P], None),
    "sip_profile_type": ([P, TYPE], c_int32),
    "sip_profile_registration_status": ([P], c_uint32),
    "sip_profile_is_context_active": ([P], c_bool),
    "sip_profile_context_id": ([P], c_uint32),
    "sip_profile_clone": ([P, PP], c_int32),
    "sip_profile_get_u32": ([P, c_uint32, POINTER(c_uint32)], c_int32),
    "sip_profile_get_bool": ([P, c_uint32, POINTER(c_bool)], c_int32),
    "sip_profile_get_str": ([P, c_uint32, c_char_p, c_size_t, POINTER(c_size_t)], c_int32),
    "sip_profile_get_str_array": ([P, c_uint32, PP], c_int32),
    "sip_profile_get_server_str": ([P, c_uint32, c_uint32, c_char_p, c_size_t, POINTER(c_size_t)], c_int32),
    "sip_profile_set_u32": ([P, c_uint32, c_uint32], c_int32),
    "sip_profile_set_bool": ([P, c_uint32, c_bool], c_int32),
    "sip_profile_set_str": ([P, c_uint32, c_char_p], c_int32),
    "sip_profile_set_str_array": ([P, c_uint32, POINTER(c_char_p), c_size_t], c_int32),
    "sip_profile_set_server_str": ([P, c_uint32, c_uint32, c_char_p], c_int32),
    "sip_profile_set_type": ([P, TYPE], c_int32),
    "sip_profile_list_len": ([P], c_size_t),
    "sip_profile_list_take": ([P, c_size_t], P),
    "sip_profile_list_free": ([P], None),
    "sip_str_list_len": ([P], c_size_t),
    "sip_str_list_get": ([P, c_size_t], c_char_p),
    "sip_str_list_free": ([P], None),
    "sip_profile_last_attempt": ([P, POINTER(c_int32), POINTER(c_uint32)], c_int32),
    "sip_managed_profile_registry_save_all": ([P, PP, c_size_t], c_int32),
}
for _prefix in ("sip_profile_registry_", "sip_managed_profile_registry_"):
    SIGNATURES.update({
        _prefix + "profile": ([P, c_uint32, PP], c_int32),
        _prefix + "default_profile": ([P, PP], c_int32),
        _prefix + "profiles": ([P, PP], c_int32),
        _prefix + "profiles_by_type": ([P, TYPE, PP], c_int32),
        _prefix + "profiles_by_aor": ([P, c_char_p, PP], c_int32),
        _prefix + "supported_types": ([P, TYPE, c_size_t, POINTER(c_size_t)], c_int32),
        _prefix + "last_registration_error": ([P, P], c_int32),
        _prefix + "new_with_flags": ([c_char_p, OBS, c_uint32, PP], c_int32),
        _prefix + "event_fd": ([P], c_int),
        _prefix + "dispatch": ([P, c_uint32, POINTER(c_uint32)], c_int32),
    })

for _name, (_args, _res) in SIGNATURES.items():
    _f = getattr(lib, _name)
    _f.argtypes = _args
    _f.restype = _res
