"""sipprofile: persistent SIP profiles (accounts) and SIP registration with
the semantics of the Symbian OS SIP Profile API, over ``libsipprofile``.

    with ManagedProfileRegistry() as m:
        p = m.create(IETF)
        p.aor = "sip:alice@example.com"
        p.registrar = "sip:example.com"
        p.set_server(Server.REGISTRAR, Key.DIGEST_USER_NAME, "alice")
        p.set_server(Server.REGISTRAR, Key.DIGEST_PASSWORD, "secret")
        m.save(p)
    with ProfileRegistry(observer=print) as r:
        q = r.profile(p.id)
        r.enable(q)
        r.wait_registered(q, timeout=10)
"""

from __future__ import annotations

import asyncio
import atexit
import ctypes
import itertools
import logging
import queue
import threading
import time
import weakref
from ctypes import byref, c_bool, c_char_p, c_int32, c_size_t, c_uint32, c_void_p
from dataclasses import dataclass
from enum import IntEnum
from typing import AsyncIterator, Callable, Iterator, List, Optional, Sequence, Union

from . import _ffi
from ._ffi import lib

__all__ = [
    "Event", "Status", "ProfileClass", "Key", "Server", "Code", "ProfileType", "IETF", "IMS",
    "SipProfileError", "NotFoundError", "ArgumentError", "InUseError", "AccessDeniedError",
    "PermissionDeniedError", "BadHandleError", "Profile", "ProfileRegistry",
    "ManagedProfileRegistry", "Notification", "version", "strerror", "last_error_message",
    "LogLevel", "set_log_handler", "log_to_logging", "APP_DISPATCH", "ATTEMPT_EVENTS",
]


#: Registry flags (``sip_*_registry_new_with_flags``); the keyword arguments
#: ``app_dispatch`` and ``attempt_events`` set them.
APP_DISPATCH = 0x1
ATTEMPT_EVENTS = 0x2

# Every value below is the header's (tests/test_header.py compares each enum
# with include/sipprofile.h, both ways), so they cannot drift apart.


class Code(IntEnum):
    """Status codes (contract §3): ``SIP_OK`` and ``SIP_ERR_*`` without the prefix."""

    OK = 0
    NOT_FOUND = -1
    GENERAL = -2
    CANCEL = -3
    NO_MEMORY = -4
    NOT_SUPPORTED = -5
    ARGUMENT = -6
    BAD_HANDLE = -8
    OVERFLOW = -9
    ALREADY_EXISTS = -11
    IN_USE = -14
    SERVER_TERMINATED = -15
    ACCESS_DENIED = -21
    LOCKED = -22
    TIMED_OUT = -33
    COULD_NOT_CONNECT = -34
    DISCONNECTED = -36
    TOO_BIG = -40
    PERMISSION_DENIED = -46
    SIP_MALFORMED_MESSAGE = -17700
    SIP_INVALID_REGISTRAR_RESPONSE = -17701
    SIP_REQUEST_PENDING = -17702
    SIP_INVALID_TRANSACTION_STATE = -17703
    SIP_INVALID_DIALOG_STATE = -17704
    SIP_INVALID_DIALOG_REQUEST = -17705
    SIP_INVALID_DIALOG_RESPONSE = -17706
    SIP_TRANSPORT_FAILURE = -17707
    SIP_NO_ACK_RECEIVED = -17708
    SIP_INVALID_REGISTRATION_STATE = -17709
    SIP_INVALID_CONTACT = -17710
    SIP_RESOURCE_NOT_AVAILABLE = -17711
    SIP_RESOLVING_FAILURE = -17712
    SIP_FORBIDDEN = -17713
    SIP_MAX_COMPARTMENTS_IN_USE = -17714
    SIP_TERMINATED_WITH_RESPONSE = -17715
    SIP_OUTBOUND_PROXY_NOT_RESPONDING = -17716
    SIP_INVALID_URI_TYPE = -17717
    SIP_ICMP_FAILURE = -17718
    SIP_APN_SWITCH_NON_FATAL_FAILURE = -17719


class Event(IntEnum):
    CREATED = 0
    UPDATED = 1
    REGISTERED = 2
    DEREGISTERED = 3
    DESTROYED = 4
    FORCIBLY_DISABLED = 5
    ATTEMPT_FAILED = 6


class Status(IntEnum):
    UNREGISTERED = 1
    UNREGISTRATION_IN_PROGRESS = 2
    REGISTRATION_IN_PROGRESS = 3
    REGISTERED = 4


class ProfileClass(IntEnum):
    INTERNET = 0
    IMS = 1
    OTHER = 2


class Server(IntEnum):
    REGISTRAR = 130
    OUTBOUND_PROXY = 131


class Key(IntEnum):
    PROFILE_ID = 1
    PROVIDER_NAME = 2
    ACCESS_POINT_ID = 3
    SIG_COMP = 4
    SECURITY_NEGOTIATION = 5
    AUTO_REGISTRATION = 6
    USER_AOR = 7
    PROFILE_REGISTERED = 8
    REGISTERED_AORS = 9
    NEGOTIATED_SECURITY_MECHANISM = 10
    DEFAULT_PROFILE = 11
    CONTACT_HEADER_PARAMS = 12
    REGISTERED_CONTACT = 13
    SNAP_ID = 14
    CONTACT_HEADER_USER = 15
    SO_IP_TOS = 16
    ACCESS_POINT_NAME = 17
    SNAP_NAME = 18
    RESOLVE_PROXY = 19
    PRIMARY_APN = 20
    SECONDARY_APN = 21
    BEARER_TYPE = 22
    DIGEST_USER_NAME = 150
    DIGEST_REALM = 151
    SERVER_ADDRESS = 152
    PRIVATE_IDENTITY = 500
    DIGEST_PASSWORD = 501
    HEADERS = 502
    ALLOW_IMS_REGISTRATION = 503
    PROFILE_LOCKED = 504
    ALLOW_AUTO_REGISTRATION_ONLY_ON_HOME_NETWORK = 505
    REGISTRATION_EXPIRES = 1000
    GRANTED_EXPIRES = 1001
    SERVICE_ROUTE = 1002
    PUB_GRUU = 1003
    TEMP_GRUU = 1004
    RETRY_BASE_SECONDS = 1005
    RETRY_MAX_SECONDS = 1006
    INSTANCE_ID = 1007
    TLS_CA_FILE = 1008
    CONTACT_URI = 1009
    DIGEST_MIN_ALGORITHM = 1010
    KEEPALIVE_SECONDS = 1011
    OUTBOUND = 1012


@dataclass(frozen=True)
class ProfileType:
    profile_class: ProfileClass
    name: str

    def _c(self) -> _ffi.sip_profile_type_info:
        return _ffi.sip_profile_type_info(int(self.profile_class), self.name.encode())


IETF = ProfileType(ProfileClass.INTERNET, "IETF")
IMS = ProfileType(ProfileClass.IMS, "ims")


class SipProfileError(Exception):
    """A negative status code of the C API (``code``), or a SIP status.
    ``message`` is the library's description of the failed call (what
    ``sip_last_error_message`` said: the key, argument, path or peer and the
    reason), or "" when there is none."""

    def __init__(self, code: int, what: str = "", message: str = ""):
        self.code = code
        self.message = message
        text = strerror(code)
        detail = f"{message} ({text}, {code})" if message else f"{text} ({code})"
        super().__init__(f"{what}: {detail}" if what else detail)


class NotFoundError(SipProfileError, LookupError):
    pass


class ArgumentError(SipProfileError, ValueError):
    pass


class InUseError(SipProfileError):
    pass


class AccessDeniedError(SipProfileError, PermissionError):
    pass


class PermissionDeniedError(SipProfileError, PermissionError):
    pass


class BadHandleError(SipProfileError):
    pass


_ERRORS = {Code.NOT_FOUND: NotFoundError, Code.ARGUMENT: ArgumentError, Code.IN_USE: InUseError,
           Code.ACCESS_DENIED: AccessDeniedError, Code.PERMISSION_DENIED: PermissionDeniedError,
           Code.BAD_HANDLE: BadHandleError}


def _check(code: int, what: str = "") -> None:
    if code != 0:
        # Read at once, on the thread that made the failed call.
        raise _ERRORS.get(code, SipProfileError)(code, what, last_error_message())


def version() -> str:
    return lib.sip_version().decode()


def network_changed() -> None:
    """Tells the library the network changed (it also watches by itself):
    registrations whose way to their registrar now leaves from another
    address register again from there (contract 8.3)."""
    lib.sip_network_changed()


def strerror(code: int) -> str:
    return lib.sip_strerror(code).decode()


def last_error_message() -> str:
    """The library's description of the last failed call on this thread ("" if none)."""
    return lib.sip_last_error_message().decode("utf-8", "replace")


def _enc(s: str) -> bytes:
    return s.encode("utf-8")


# ----- logging -------------------------------------------------------------------


class LogLevel(IntEnum):
    """The library's log levels (``sip_set_log_callback``)."""

    ERROR = 1
    WARN = 2
    INFO = 3
    DEBUG = 4
    TRACE = 5  # every SIP message, digest responses masked; never a password


TRACE = 5  # the logging level TRACE lines are logged at (below DEBUG)
logging.addLevelName(TRACE, "TRACE")
_TO_LOGGING = {LogLevel.ERROR: logging.ERROR, LogLevel.WARN: logging.WARNING,
               LogLevel.INFO: logging.INFO, LogLevel.DEBUG: logging.DEBUG, LogLevel.TRACE: TRACE}

_log_handler: Optional[Callable[[LogLevel, str], None]] = None


@_ffi.LOG_CB
def _on_log(_ctx, level, message):
    handler = _log_handler
    if handler is None:
        return
    try:
        handler(LogLevel(level) if 1 <= level <= 5 else LogLevel.TRACE,
                message.decode("utf-8", "replace") if message else "")
    except BaseException:  # never let an exception unwind into the library
        pass


def set_log_handler(handler: Optional[Callable[[LogLevel, str], None]],
                    max_level: LogLevel = LogLevel.INFO) -> None:
    """Sends the library's log lines at ``max_level`` and below to
    ``handler(level, message)``, called on whichever library thread logs: keep
    it short, and call no sipprofile function from it. ``None`` logs to
    stderr again, filtered by ``$SIPPROFILE_LOG`` (default warn)."""
    global _log_handler
    _log_handler = handler
    if handler is None:
        lib.sip_set_log_callback(_ffi.LOG_CB(), None, 0)
    else:
        lib.sip_set_log_callback(_on_log, None, int(max_level))


def log_to_logging(logger: Union[str, logging.Logger] = "sipprofile",
                   max_level: LogLevel = LogLevel.INFO) -> logging.Logger:
    """Routes the library's log to the ``logging`` module: ``logger`` (a
    name or a Logger, default ``"sipprofile"``) gets each line at the
    matching level (ERROR, WARNING, INFO, DEBUG, and TRACE = 5 below DEBUG).
    Returns the logger. ``set_log_handler(None)`` undoes it."""
    log = logging.getLogger(logger) if isinstance(logger, str) else logger
    set_log_handler(lambda level, message: log.log(_TO_LOGGING[level], "%s", message), max_level)
    return log


# Before _close_all is registered, so it runs after it: once Python is
# finalizing, no library thread may call back into it.
atexit.register(lambda: set_log_handler(None) if _log_handler is not None else None)


# ----- profiles ----------------------------------------------------------------


class Profile:
    """One profile handle. Freed by ``close()``, ``with``, or garbage collection;
    freeing the last handle of a profile in a registry disables it there."""

    def __init__(self, handle: int, registry: "_Registry"):
        self._h: Optional[int] = handle
        self._registry = registry
        self._finalizer = weakref.finalize(self, lib.sip_profile_free, c_void_p(handle))

    def close(self) -> None:
        if self._h is not None:
            self._finalizer()
            self._h = None

    def __enter__(self) -> "Profile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def _handle(self) -> int:
        if self._h is None:
            raise BadHandleError(Code.BAD_HANDLE, "profile closed")
        return self._h

    # typed access by key (ref §4)
    def get_u32(self, key: int) -> int:
        v = c_uint32()
        _check(lib.sip_profile_get_u32(self._handle, key, byref(v)), f"get_u32({key})")
        return v.value

    def get_bool(self, key: int) -> bool:
        v = c_bool()
        _check(lib.sip_profile_get_bool(self._handle, key, byref(v)), f"get_bool({key})")
        return v.value

    def get_str(self, key: int) -> str:
        return self._read_str(lambda buf, cap, n: lib.sip_profile_get_str(self._handle, key, buf, cap, n))

    def get_str_array(self, key: int) -> List[str]:
        lst = c_void_p()
        _check(lib.sip_profile_get_str_array(self._handle, key, byref(lst)), f"get_str_array({key})")
        try:
            return [lib.sip_str_list_get(lst, i).decode() for i in range(lib.sip_str_list_len(lst))]
        finally:
            lib.sip_str_list_free(lst)

    def get_server(self, server: int, key: int) -> str:
        return self._read_str(
            lambda buf, cap, n: lib.sip_profile_get_server_str(self._handle, server, key, buf, cap, n))

    @staticmethod
    def _read_str(call) -> str:
        n = c_size_t()
        buf = ctypes.create_string_buffer(256)
        rc = call(buf, len(buf), byref(n))
        if rc == Code.OVERFLOW:  # too small: n holds the length needed
            buf = ctypes.create_string_buffer(n.value + 1)
            rc = call(buf, len(buf), byref(n))
        _check(rc)
        return buf.raw[: n.value].decode()

    def get(self, key: int, kind: type = str):
        """Reads ``key`` through the getter for ``kind`` (int, bool, str or list)."""
        return {int: self.get_u32, bool: self.get_bool, str: self.get_str, list: self.get_str_array}[kind](key)

    def set(self, key: int, value: Union[int, bool, str, Sequence[str]]) -> None:
        """Sets ``key`` through the setter for the value's type (managed profiles only)."""
        if isinstance(value, bool):
            _check(lib.sip_profile_set_bool(self._handle, key, value), f"set({key})")
        elif isinstance(value, int):
            _check(lib.sip_profile_set_u32(self._handle, key, value), f"set({key})")
        elif isinstance(value, str):
            _check(lib.sip_profile_set_str(self._handle, key, _enc(value)), f"set({key})")
        else:
            items = [_enc(v) for v in value]
            arr = (c_char_p * len(items))(*items)
            _check(lib.sip_profile_set_str_array(self._handle, key, arr, len(items)), f"set({key})")

    def set_server(self, server: int, key: int, value: str) -> None:
        _check(lib.sip_profile_set_server_str(self._handle, server, key, _enc(value)), f"set_server({key})")

    # common keys as properties
    @property
    def id(self) -> int:
        return self.get_u32(Key.PROFILE_ID)

    @property
    def aor(self) -> str:
        return self.get_str(Key.USER_AOR)

    @aor.setter
    def aor(self, v: str) -> None:
        self.set(Key.USER_AOR, v)

    @property
    def provider_name(self) -> str:
        return self.get_str(Key.PROVIDER_NAME)

    @provider_name.setter
    def provider_name(self, v: str) -> None:
        self.set(Key.PROVIDER_NAME, v)

    @property
    def registrar(self) -> str:
        return self.get_server(Server.REGISTRAR, Key.SERVER_ADDRESS)

    @registrar.setter
    def registrar(self, v: str) -> None:
        self.set_server(Server.REGISTRAR, Key.SERVER_ADDRESS, v)

    @property
    def auto_registration(self) -> bool:
        return self.get_bool(Key.AUTO_REGISTRATION)

    @auto_registration.setter
    def auto_registration(self, v: bool) -> None:
        self.set(Key.AUTO_REGISTRATION, bool(v))

    @property
    def expires(self) -> int:
        return self.get_u32(Key.REGISTRATION_EXPIRES)

    @expires.setter
    def expires(self, v: int) -> None:
        self.set(Key.REGISTRATION_EXPIRES, int(v))

    @property
    def status(self) -> Status:
        return Status(lib.sip_profile_registration_status(self._handle))

    @property
    def is_registered(self) -> bool:
        return self.get_bool(Key.PROFILE_REGISTERED)

    @property
    def is_context_active(self) -> bool:
        return bool(lib.sip_profile_is_context_active(self._handle))

    @property
    def registered_contact(self) -> Optional[str]:
        try:
            return self.get_str(Key.REGISTERED_CONTACT)
        except NotFoundError:
            return None

    @property
    @property
    def last_attempt(self) -> "tuple[int, float]":
        """The last registration attempt: its error (0 if it succeeded or none
        was made; a negative code or a SIP status) and the seconds until the
        next attempt (0 if none is scheduled)."""
        err, ms = c_int32(), c_uint32()
        _check(lib.sip_profile_last_attempt(self._handle, byref(err), byref(ms)), "last_attempt")
        return err.value, ms.value / 1000.0

    def type(self) -> ProfileType:
        t = _ffi.sip_profile_type_info()
        _check(lib.sip_profile_type(self._handle, byref(t)))
        return ProfileType(ProfileClass(t.profile_class), t.name.decode())

    def clone(self) -> "Profile":
        out = c_void_p()
        _check(lib.sip_profile_clone(self._handle, byref(out)), "clone")
        return Profile(out.value, self._registry)

    def __repr__(self) -> str:
        try:
            return f"<Profile {self.id} {self.aor!r} {self.status.name}>"
        except SipProfileError:
            return "<Profile (closed)>"


# ----- observers -----------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One observer callback: an ``event``, or an ``error`` (negative code or SIP status)."""

    profile_id: int
    event: Optional[Event] = None
    error: Optional[int] = None


# Callbacks reach Python through two module-level trampolines (kept alive for
# the life of the process) and an integer context key, never a Python pointer.
_registries: "dict[int, _Registry]" = {}
_registries_lock = threading.Lock()
_keys = itertools.count(1)


def _dispatch(key: Optional[int], note: Notification) -> None:
    try:
        with _registries_lock:
            reg = _registries.get(key or 0)
        if reg is not None:
            reg._deliver(note)
    except BaseException:  # never let an exception unwind into the library
        import traceback
        traceback.print_exc()


@_ffi.EVENT_CB
def _on_event(ctx, profile_id, event):
    _dispatch(ctx, Notification(profile_id, event=Event(event)))


@_ffi.ERROR_CB
def _on_error(ctx, profile_id, error):
    _dispatch(ctx, Notification(profile_id, error=error))


Observer = Callable[[Notification], None]


class _Registry:
    _prefix = ""
    _new = None
    _free = None

    #: How many notifications ``events()`` keeps for a reader; past that the
    #: oldest go, so a registry whose events nobody reads stays bounded.
    EVENTS_KEPT = 1024

    def __init__(self, store: Optional[str] = None, observer: Optional[Observer] = None, *,
                 app_dispatch: bool = False, attempt_events: bool = False):
        """``app_dispatch``: callbacks run only in ``dispatch()`` (or ``aevents()``)
        on the calling thread, never on a library thread; ``attempt_events``:
        also deliver ``Event.ATTEMPT_FAILED`` for each failed attempt that will
        be retried."""
        self._key = next(_keys)
        self._observer = observer
        self._queue: "queue.Queue[Notification]" = queue.Queue(self.EVENTS_KEPT)
        self._cond = threading.Condition()
        # Notifications delivered so far, and per profile the last error
        # with its number: what wait_registered looks at, bounded by the
        # number of profiles.
        self._delivered = 0
        self._last_error: "dict[int, tuple[int, int]]" = {}
        self._enabled_at: "dict[int, int]" = {}
        with _registries_lock:
            _registries[self._key] = self
        obs = _ffi.sip_profile_registry_observer(self._key, _on_event, _on_error)
        out = c_void_p()
        flags = (APP_DISPATCH if app_dispatch else 0) | (ATTEMPT_EVENTS if attempt_events else 0)
        rc = getattr(lib, type(self)._prefix + "new_with_flags")(
            _enc(store) if store is not None else None, byref(obs), flags, byref(out))
        if rc != 0:
            with _registries_lock:
                _registries.pop(self._key, None)
            _check(rc, "open registry")
        self._h: Optional[int] = out.value
        _live.add(self)

    def _fn(self, name: str):
        return getattr(lib, self._prefix + name)

    @property
    def _handle(self) -> int:
        if self._h is None:
            raise BadHandleError(Code.BAD_HANDLE, "registry closed")
        return self._h

    def close(self) -> None:
        """Frees the registry; when it returns no callback of it runs."""
        if self._h is not None:
            h, self._h = self._h, None
            type(self)._free(h)
            with _registries_lock:
                _registries.pop(self._key, None)
            _live.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def _deliver(self, note: Notification) -> None:
        while True:
            try:
                self._queue.put_nowait(note)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()  # drop the oldest
                except queue.Empty:
                    pass
        with self._cond:
            self._delivered += 1
            if note.error is not None:
                self._last_error[note.profile_id] = (self._delivered, note.error)
            self._cond.notify_all()
        if self._observer is not None:
            self._observer(note)

    def events(self, timeout: Optional[float] = None) -> Iterator[Notification]:
        """Notifications as they arrive (the newest ``EVENTS_KEPT`` of those not
        yet read); ends after ``timeout`` s of silence."""
        while True:
            try:
                yield self._queue.get(timeout=timeout)
            except queue.Empty:
                return

    @property
    def event_fd(self) -> int:
        """With ``app_dispatch``: an fd that polls readable while callbacks wait
        (owned by the registry: never close it); else -1."""
        return self._fn("event_fd")(self._handle)

    def fileno(self) -> int:
        """``event_fd``, so that ``select``/``selectors`` take the registry itself."""
        return self.event_fd

    def dispatch(self, max_callbacks: int = 0) -> int:
        """With ``app_dispatch``: runs up to ``max_callbacks`` waiting callbacks
        (0: all) on this thread; returns how many ran."""
        ran = c_uint32()
        _check(self._fn("dispatch")(self._handle, max_callbacks, byref(ran)), "dispatch")
        return ran.value

    async def aevents(self) -> "AsyncIterator[Notification]":
        """With ``app_dispatch``: the notifications, awaited on the running
        asyncio loop; callbacks (and ``observer``) run on the loop's thread."""
        loop = asyncio.get_running_loop()
        fd = self.event_fd
        if fd < 0:
            raise SipProfileError(-5, "aevents needs a registry made with app_dispatch=True")
        ready = asyncio.Event()
        loop.add_reader(fd, ready.set)
        try:
            while self._h is not None:
                try:
                    yield self._queue.get_nowait()
                    continue
                except queue.Empty:
                    pass
                ready.clear()
                if self.dispatch() == 0:
                    await ready.wait()
        finally:
            loop.remove_reader(fd)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def _one(self, name: str, *args) -> Profile:
        out = c_void_p()
        _check(self._fn(name)(self._handle, *args, byref(out)), name)
        return Profile(out.value, self)

    def _many(self, name: str, *args) -> List[Profile]:
        lst = c_void_p()
        _check(self._fn(name)(self._handle, *args, byref(lst)), name)
        try:
            return [Profile(lib.sip_profile_list_take(lst, i), self) for i in range(lib.sip_profile_list_len(lst))]
        finally:
            lib.sip_profile_list_free(lst)

    def profile(self, profile_id: int) -> Profile:
        return self._one("profile", profile_id)

    def default_profile(self) -> Profile:
        return self._one("default_profile")

    def profiles(self) -> List[Profile]:
        return self._many("profiles")

    def profiles_by_type(self, t: ProfileType) -> List[Profile]:
        return self._many("profiles_by_type", byref(t._c()))

    def profiles_by_aor(self, aor: str) -> List[Profile]:
        return self._many("profiles_by_aor", _enc(aor))

    def supported_types(self) -> List[ProfileType]:
        n = c_size_t()
        arr = (_ffi.sip_profile_type_info * 8)()
        _check(self._fn("supported_types")(self._handle, arr, 8, byref(n)))
        return [ProfileType(ProfileClass(arr[i].profile_class), arr[i].name.decode()) for i in range(n.value)]

    def last_registration_error(self, p: Profile) -> int:
        return self._fn("last_registration_error")(self._handle, p._handle)


class ProfileRegistry(_Registry):
    """A user registry (``CSIPProfileRegistry``): enables and disables profiles."""

    _prefix = "sip_profile_registry_"
    _new = lib.sip_profile_registry_new
    _free = lib.sip_profile_registry_free

    def _mark_enabled(self, p: Profile) -> None:
        # Errors delivered before this (enable) are not this attempt's.
        pid = p.id
        with self._cond:
            self._enabled_at[pid] = self._delivered

    def enable(self, p: Profile) -> None:
        self._mark_enabled(p)
        _check(lib.sip_profile_registry_enable(self._handle, p._handle), "enable")

    def disable(self, p: Profile) -> None:
        _check(lib.sip_profile_registry_disable(self._handle, p._handle), "disable")

    def is_enabled(self, p: Profile) -> bool:
        return bool(lib.sip_profile_registry_is_enabled(self._handle, p._handle))

    def refresh_enable(self, p: Profile) -> None:
        self._mark_enabled(p)
        _check(lib.sip_profile_registry_refresh_enable(self._handle, p._handle), "refresh_enable")

    def force_disable(self, p: Profile) -> None:
        _check(lib.sip_profile_registry_force_disable(self._handle, p._handle), "force_disable")

    def wait_registered(self, p: Profile, timeout: float = 10.0) -> None:
        """Waits until ``p`` is registered; raises the error of the registration
        attempt started by the last ``enable`` (or ``refresh_enable``) if it
        fails, TimeoutError if neither happens in time."""
        pid = p.id
        with self._cond:
            since = self._enabled_at.get(pid, 0)
        failed: List[int] = []

        def done() -> bool:  # called with self._cond held
            seq, code = self._last_error.get(pid, (0, 0))
            if seq > since:
                failed.append(code)
                return True
            return p.status == Status.REGISTERED

        if not self.wait_for(done, timeout):
            raise TimeoutError(f"profile {pid} not registered within {timeout} s")
        if failed and p.status != Status.REGISTERED:
            raise _ERRORS.get(failed[0], SipProfileError)(failed[0], "registration")


class ManagedProfileRegistry(_Registry):
    """A managed registry (``CSIPManagedProfileRegistry``): creates, saves, destroys."""

    _prefix = "sip_managed_profile_registry_"
    _new = lib.sip_managed_profile_registry_new
    _free = lib.sip_managed_profile_registry_free

    def create(self, t: ProfileType = IETF) -> Profile:
        return self._one("create", byref(t._c()))

    def save(self, p: Profile) -> None:
        _check(lib.sip_managed_profile_registry_save(self._handle, p._handle), "save")

    def save_all(self, profiles: Sequence[Profile]) -> None:
        """Saves every profile in one durable transaction: all or nothing."""
        arr = (c_void_p * len(profiles))(*[p._handle for p in profiles])
        _check(lib.sip_managed_profile_registry_save_all(self._handle, arr, len(profiles)), "save_all")

    def destroy(self, p: Profile) -> None:
        _check(lib.sip_managed_profile_registry_destroy(self._handle, p._handle), "destroy")

    def is_in_use(self, p: Profile) -> bool:
        v = c_bool()
        _check(lib.sip_managed_profile_registry_is_in_use(self._handle, p._handle, byref(v)), "is_in_use")
        return v.value


# Registries still open at exit are freed (de-registering, bounded wait).
_live: "weakref.WeakSet[_Registry]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    for reg in list(_live):
        try:
            reg.close()
        except Exception:
            pass
