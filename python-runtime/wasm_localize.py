#!/usr/bin/env python3
"""Makes every defined symbol of a relocatable wasm object local, except those named to keep.

Under WASI there is no dynamic loading, so each C extension module (numpy's, pandas') is linked
into python.wasm. On Linux each module is a shared object with its own namespace; statically,
their global symbols would meet in one: numpy.random's `mtrand` defines `random_poisson`
returning `long` while `libnpyrandom` (linked into five other modules) defines it returning
`int64_t`. wasm-ld would pick one and turn the other's calls into traps. So each module is first
partially linked (`wasm-ld -r`) with its own static libraries, then this tool hides everything
but its `PyInit_*` entry point, which is what a shared object's namespace gives it natively.

It rewrites the symbol table of the object's `linking` section (flags to BINDING_LOCAL) and
drops its COMDAT subsection: a local copy of an inline C++ function must not be folded with
another module's copy of the same name. Format: the WebAssembly tool-conventions, Linking.md.

Usage: wasm_localize.py OBJECT --keep SYMBOL [--keep SYMBOL ...]   (rewrites OBJECT in place)
"""
import argparse
import os
import sys

SYMTAB, COMDAT_INFO = 8, 7
KIND_FUNCTION, KIND_DATA, KIND_GLOBAL, KIND_SECTION = 0, 1, 2, 3
BINDING_MASK, BINDING_LOCAL = 0x3, 0x2
UNDEFINED, EXPLICIT_NAME = 0x10, 0x40


def read_uleb(buf, pos):
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def uleb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_name(buf, pos):
    length, pos = read_uleb(buf, pos)
    return bytes(buf[pos : pos + length]), pos + length


def rewrite_symtab(payload, keep):
    """Returns the symbol table with defined, non-kept symbols made local, and the count."""
    count, pos = read_uleb(payload, 0)
    out = bytearray(uleb(count))
    localized, kept = 0, set()
    for _ in range(count):
        kind = payload[pos]
        flags, pos = read_uleb(payload, pos + 1)
        start = pos
        name = None
        if kind == KIND_DATA:
            name, pos = read_name(payload, pos)
            if not flags & UNDEFINED:
                for _ in range(3):  # segment index, offset, size
                    _, pos = read_uleb(payload, pos)
        elif kind == KIND_SECTION:
            _, pos = read_uleb(payload, pos)
        else:  # function, global, tag, table: an index, then a name when defined or explicit
            _, pos = read_uleb(payload, pos)
            if not flags & UNDEFINED or flags & EXPLICIT_NAME:
                name, pos = read_name(payload, pos)
        defined = not flags & UNDEFINED
        if defined and name is not None and name.decode() in keep:
            kept.add(name.decode())
        if (
            defined
            and name is not None
            and kind in (KIND_FUNCTION, KIND_DATA, KIND_GLOBAL)
            and flags & BINDING_MASK != BINDING_LOCAL
            and name.decode() not in keep
        ):
            flags = (flags & ~BINDING_MASK) | BINDING_LOCAL
            localized += 1
        out.append(kind)
        out += uleb(flags)
        out += payload[start:pos]
    if pos != len(payload):
        raise ValueError("symbol table has trailing bytes")
    if kept != keep:
        raise ValueError(f"no definition of {', '.join(sorted(keep - kept))}")
    return bytes(out), localized


def rewrite_linking(payload, keep):
    version, pos = read_uleb(payload, 0)
    if version != 2:
        raise ValueError(f"linking section version {version}, expected 2")
    out = bytearray(uleb(version))
    localized, kept_seen = 0, False
    while pos < len(payload):
        kind = payload[pos]
        size, pos = read_uleb(payload, pos + 1)
        body = payload[pos : pos + size]
        pos += size
        if kind == COMDAT_INFO:
            continue
        if kind == SYMTAB:
            body, localized = rewrite_symtab(body, keep)
            kept_seen = True
        out.append(kind)
        out += uleb(len(body))
        out += body
    if not kept_seen:
        raise ValueError("no symbol table in the linking section")
    return bytes(out), localized


def localize(data, keep):
    if data[:8] != b"\0asm\x01\0\0\0":
        raise ValueError("not a wasm module (version 1)")
    out = bytearray(data[:8])
    pos, found = 8, False
    while pos < len(data):
        section_id = data[pos]
        size, body_start = read_uleb(data, pos + 1)
        body = data[body_start : body_start + size]
        pos = body_start + size
        if section_id == 0:
            name, name_end = read_name(body, 0)
            if name == b"linking":
                linking, localized = rewrite_linking(body[name_end:], keep)
                body = body[:name_end] + linking
                found = True
        out.append(section_id)
        out += uleb(len(body))
        out += body
    if not found:
        raise ValueError("no linking section: not a relocatable object (wasm-ld -r)")
    return bytes(out), localized


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("object")
    parser.add_argument("--keep", action="append", default=[], required=True)
    args = parser.parse_args()
    with open(args.object, "rb") as f:
        data = f.read()
    try:
        out, localized = localize(data, set(args.keep))
    except (ValueError, IndexError) as e:
        sys.exit(f"wasm_localize: {args.object}: {e}")
    tmp = args.object + ".localize.tmp"
    with open(tmp, "wb") as f:
        f.write(out)
    os.replace(tmp, args.object)
    print(f"wasm_localize: {args.object}: {localized} symbols made local", file=sys.stderr)


if __name__ == "__main__":
    main()
