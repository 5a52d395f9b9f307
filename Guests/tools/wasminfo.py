#!/usr/bin/env python3
"""Print the imports, exports, memory limits and size of WebAssembly modules.

Usage: wasminfo.py [--quiet] [--imports-from MODULE | --no-imports] MODULE.wasm...
(standard library only). With --imports-from / --no-imports it exits 1 if a module
imports anything else.
"""
import sys

VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128",
            0x70: "funcref", 0x6F: "externref"}


class Reader:
    def __init__(self, data, pos=0):
        self.data, self.pos = data, pos

    def byte(self):
        b = self.data[self.pos]
        self.pos += 1
        return b

    def uleb(self):
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return result

    def name(self):
        n = self.uleb()
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def limits(self):
        flags = self.byte()
        lo = self.uleb()
        hi = self.uleb() if flags & 1 else None
        return lo, hi


def signature(types, idx):
    params, results = types[idx]
    return "(%s) -> (%s)" % (", ".join(params), ", ".join(results))


def inspect(path, quiet=False, allowed=None):
    data = open(path, "rb").read()
    assert data[:4] == b"\0asm", "not a wasm module"
    r = Reader(data, 8)
    types, func_types, imports, exports, memories = [], [], [], [], []
    imported_funcs = 0
    while r.pos < len(data):
        sid = r.byte()
        size = r.uleb()
        end = r.pos + size
        if sid == 1:  # type
            for _ in range(r.uleb()):
                assert r.byte() == 0x60
                params = [VALTYPES[r.byte()] for _ in range(r.uleb())]
                results = [VALTYPES[r.byte()] for _ in range(r.uleb())]
                types.append((params, results))
        elif sid == 2:  # import
            for _ in range(r.uleb()):
                mod, name, kind = r.name(), r.name(), r.byte()
                if kind == 0:
                    t = r.uleb()
                    func_types.append(t)
                    imported_funcs += 1
                    imports.append("%s.%s func %s" % (mod, name, signature(types, t)))
                elif kind == 1:
                    r.byte(); r.limits()
                    imports.append("%s.%s table" % (mod, name))
                elif kind == 2:
                    memories.append(r.limits())
                    imports.append("%s.%s memory" % (mod, name))
                else:
                    r.byte(); r.byte()
                    imports.append("%s.%s global" % (mod, name))
        elif sid == 3:  # function
            func_types.extend(r.uleb() for _ in range(r.uleb()))
        elif sid == 5:  # memory
            memories.extend(r.limits() for _ in range(r.uleb()))
        elif sid == 7:  # export
            for _ in range(r.uleb()):
                name, kind, idx = r.name(), r.byte(), r.uleb()
                if kind == 0:
                    exports.append("%s func %s" % (name, signature(types, func_types[idx])))
                else:
                    exports.append("%s %s" % (name, ["func", "table", "memory", "global"][kind]))
        r.pos = end
    bad = [i for i in imports if allowed is not None and not i.startswith(allowed + ".")]
    if bad:
        print("%s: unexpected imports: %s" % (path, ", ".join(bad)), file=sys.stderr)
    if quiet:
        return not bad
    print("%s: %d bytes" % (path, len(data)))
    for lo, hi in memories:
        print("  memory: initial %d pages (%d KiB), max %s" %
              (lo, lo * 64, "none" if hi is None else "%d pages" % hi))
    print("  imports (%d):" % len(imports))
    for i in imports:
        print("    " + i)
    print("  exports (%d):" % len(exports))
    for e in exports:
        print("    " + e)
    return not bad


if __name__ == "__main__":
    args, quiet, allowed, ok = sys.argv[1:], False, None, True
    while args and args[0].startswith("--"):
        opt = args.pop(0)
        if opt == "--quiet":
            quiet = True
        elif opt == "--no-imports":
            allowed = "\0"   # matches no module name
        elif opt == "--imports-from":
            allowed = args.pop(0)
        else:
            sys.exit("unknown option " + opt)
    for p in args:
        ok = inspect(p, quiet, allowed) and ok
    sys.exit(0 if ok else 1)
