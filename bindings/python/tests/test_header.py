"""Every argtypes/restype in sipprofile._ffi matches include/sipprofile.h,
read with pycparser."""

import ctypes
import subprocess
from pathlib import Path

import pycparser
from pycparser import c_ast

import sipprofile
from sipprofile import _ffi

ROOT = Path(__file__).resolve().parents[3]
HEADER = ROOT / "include" / "sipprofile.h"

FAKE = {
    "stdbool.h": "typedef _Bool bool;\n",
    "stdint.h": "typedef int int32_t; typedef unsigned int uint32_t;\n",
    "stddef.h": "typedef unsigned long size_t;\n",
}


def parse(tmp_path):
    for name, text in FAKE.items():
        (tmp_path / name).write_text(text)
    pre = subprocess.run(["gcc", "-E", "-P", "-nostdinc", "-I", str(tmp_path), str(HEADER)],
                         capture_output=True, text=True, check=True).stdout
    return pycparser.CParser().parse(pre.replace("_Bool", "_Bool"), "sipprofile.h")


def c_kind(node) -> str:
    """A coarse type class a ctypes declaration must match."""
    if isinstance(node, c_ast.PtrDecl):
        inner = node.type
        if isinstance(inner, c_ast.TypeDecl) and isinstance(inner.type, c_ast.IdentifierType) \
                and inner.type.names == ["char"]:
            return "char*"
        if isinstance(inner, c_ast.FuncDecl):
            return "fn*"
        return "ptr"
    if isinstance(node, c_ast.TypeDecl):
        t = node.type
        if isinstance(t, c_ast.IdentifierType):
            name = " ".join(t.names)
            return {"int": "i32", "int32_t": "i32", "uint32_t": "u32", "size_t": "size", "bool": "bool", "_Bool": "bool",
                    "void": "void", "sip_log_callback": "fn*", "sip_profile_status": "u32"}.get(name, name)
        if isinstance(t, c_ast.Enum):
            return "u32"
    return "?"


def py_kind(t) -> str:
    if t is None:
        return "void"
    if t is ctypes.c_char_p:
        return "char*"
    if t in (ctypes.c_int32,):
        return "i32"
    if t in (ctypes.c_uint32,):
        return "u32"
    if t is ctypes.c_size_t:
        return "size"
    if t is ctypes.c_bool:
        return "bool"
    if t is ctypes.c_void_p or issubclass(t, ctypes._Pointer):
        return "ptr"
    if issubclass(t, ctypes._CFuncPtr):
        return "fn*"
    return "?"


def test_every_function_matches_the_header(tmp_path):
    ast = parse(tmp_path)
    funcs = {}
    for ext in ast.ext:
        if isinstance(ext, c_ast.Decl) and isinstance(ext.type, c_ast.FuncDecl):
            fd = ext.type
            params = [] if fd.args is None else [p.type for p in fd.args.params]
            if len(params) == 1 and c_kind(params[0]) == "void":
                params = []
            funcs[ext.name] = ([c_kind(p) for p in params], c_kind(fd.type))
    assert set(funcs) == set(_ffi.SIGNATURES), set(funcs) ^ set(_ffi.SIGNATURES)
    for name, (args, res) in _ffi.SIGNATURES.items():
        want_args, want_res = funcs[name]
        got = [py_kind(a) for a in args]
        # char* parameters that are output buffers are declared c_char_p too.
        assert [("ptr" if g == "char*" and w == "ptr" else g) for g, w in zip(got, want_args)] == want_args \
            or got == want_args, (name, got, want_args)
        assert py_kind(res) == want_res, (name, py_kind(res), want_res)


def header_constants(tmp_path) -> "dict[str, int]":
    """Every #define with an integer value and every enum constant of the header."""
    for name, text in FAKE.items():
        (tmp_path / name).write_text(text)
    macros = subprocess.run(["gcc", "-E", "-dM", "-nostdinc", "-I", str(tmp_path), str(HEADER)],
                            capture_output=True, text=True, check=True).stdout
    values = {}
    for line in macros.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].startswith("SIP_"):
            values[parts[1]] = int(parts[2].rstrip("u"), 0)
    for ext in parse(tmp_path).ext:
        enum = getattr(getattr(ext, "type", None), "type", None)
        if isinstance(enum, c_ast.Enum) and enum.values is not None:
            for e in enum.values.enumerators:
                values[e.name] = int(e.value.value)
    return values


# Python enum -> the header's name for one of its members.
ENUMS = {
    sipprofile.Code: lambda n: "SIP_OK" if n == "OK" else "SIP_ERR_" + n,
    sipprofile.Key: lambda n: "SIP_KEY_" + n,
    sipprofile.Server: lambda n: "SIP_SERVER_" + n,
    sipprofile.Event: lambda n: "SIP_PROFILE_" + n,
    sipprofile.Status: lambda n: "SIP_PROFILE_STATUS_" + n,
    sipprofile.ProfileClass: lambda n: "SIP_PROFILE_CLASS_" + n,
}


def test_every_value_matches_the_header(tmp_path):
    header = header_constants(tmp_path)
    named = set()
    for enum, c_name in ENUMS.items():
        for member in enum:
            name = c_name(member.name)
            assert name in header, f"{enum.__name__}.{member.name}: no {name} in the header"
            assert header[name] == member.value, (name, header[name], member.value)
            named.add(name)
    assert sipprofile.APP_DISPATCH == header["SIP_REGISTRY_APP_DISPATCH"]
    assert sipprofile.ATTEMPT_EVENTS == header["SIP_REGISTRY_ATTEMPT_EVENTS"]
    # The other way: every status code and key of the header has its Python name.
    for name in header:
        if name.startswith(("SIP_ERR_", "SIP_KEY_", "SIP_SERVER_")) or name == "SIP_OK":
            assert name in named, f"{name} is in the header but not in the Python package"
