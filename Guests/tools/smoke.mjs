// smoke.mjs: runs the built guests under Node's WebAssembly engine with a minimal
// JavaScript stand-in for the host's "cf" imports (single-threaded: queues never block).
// A development check of the guest side only; the real host is WasmKit.
//
// Usage: node Guests/tools/smoke.mjs [Guests/build]

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { deflateSync } from "node:zlib";

const dir = process.argv[2] ?? new URL("../build", import.meta.url).pathname;
let failures = 0;
const check = (name, got, want) => {
  const ok = JSON.stringify(got, big) === JSON.stringify(want, big);
  if (!ok) failures++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}: ${JSON.stringify(got, big)}${ok ? "" : ` (want ${JSON.stringify(want, big)})`}`);
};
function big(_k, v) { return typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? [...v] : v; }
const traps = (name, f, pattern) => {
  try { f(); check(name, "returned", `trap ${pattern}`); }
  catch (e) { check(name, pattern.test(e.message) ? "trap" : `other: ${e.message}`, "trap"); console.log(`       (${e.message})`); }
};

// --- value encoding ----------------------------------------------------------
const enc = new TextEncoder(), dec = new TextDecoder();
function encode(v, out = []) {
  const uleb = (n) => { n = BigInt(n); do { let b = Number(n & 0x7fn); n >>= 7n; out.push(n ? b | 0x80 : b); } while (n); };
  const sleb = (n) => { for (;;) { const b = Number(n & 0x7fn); n >>= 7n; const done = (n === 0n && !(b & 0x40)) || (n === -1n && (b & 0x40)); out.push(done ? b : b | 0x80); if (done) return; } };
  if (v === null) out.push(0);
  else if (v === false) out.push(1);
  else if (v === true) out.push(2);
  else if (typeof v === "bigint") { out.push(3); sleb(v); }
  else if (typeof v === "number") { out.push(4); out.push(...new Uint8Array(new Float64Array([v]).buffer)); }
  else if (typeof v === "string") { const b = enc.encode(v); out.push(5); uleb(b.length); out.push(...b); }
  else if (v instanceof Uint8Array) { out.push(6); uleb(v.length); out.push(...v); }
  else if (Array.isArray(v)) { out.push(7); uleb(v.length); v.forEach((x) => encode(x, out)); }
  else if (v.queue !== undefined) { out.push(8); uleb(v.queue); }
  return out;
}
function decode(bytes) {
  let i = 0;
  const uleb = () => { let r = 0n, s = 0n, b; do { b = bytes[i++]; r |= BigInt(b & 0x7f) << s; s += 7n; } while (b & 0x80); return r; };
  const sleb = () => { let r = 0n, s = 0n, b; do { b = bytes[i++]; r |= BigInt(b & 0x7f) << s; s += 7n; } while (b & 0x80); if (b & 0x40) r -= 1n << s; return BigInt.asIntN(64, r); };
  const value = () => {
    const tag = bytes[i++];
    switch (tag) {
      case 0: return null; case 1: return false; case 2: return true; case 3: return sleb();
      case 4: { const d = new Float64Array(bytes.slice(i, i + 8).buffer)[0]; i += 8; return d; }
      case 5: { const n = Number(uleb()); const s = dec.decode(bytes.slice(i, i + n)); i += n; return s; }
      case 6: { const n = Number(uleb()); const b = bytes.slice(i, i + n); i += n; return b; }
      case 7: { const n = Number(uleb()); return Array.from({ length: n }, value); }
      case 8: return { queue: Number(uleb()) };
      default: throw new Error(`bad tag ${tag}`);
    }
  };
  const v = value();
  if (i !== bytes.length) throw new Error("trailing bytes");
  return v;
}

// --- a toy host ----------------------------------------------------------------
function load(file) {
  const queues = new Map([[1, []], [2, []]]);
  let inst, result, output = "";
  const mem = () => new Uint8Array(inst.exports.memory.buffer);
  const view = (p, n) => {
    if (p < 0 || n < 0 || p + n > mem().length) throw new Error(`bad pointer ${p}+${n}`);
    return mem().slice(p, p + n);
  };
  const cf = {
    return_value: (p, n) => { result = { value: decode(view(p, n)) }; },
    return_string: (p, n) => { result = { value: dec.decode(view(p, n)) }; },
    return_bytes: (p, n) => { result = { value: view(p, n) }; },
    queue_put_int: (q, v, _t) => queues.has(q) ? (queues.get(q).push(encode(v)), 0) : 2,
    queue_get_int: (q, _t, out) => {
      const items = queues.get(q); if (!items) return 2; if (!items.length) return 1;
      const v = decode(Uint8Array.from(items[0])); if (typeof v !== "bigint") return 4;
      items.shift(); new DataView(inst.exports.memory.buffer).setBigInt64(out, v, true); return 0;
    },
    queue_put: (q, p, n, _t) => { if (!queues.has(q)) return 2; const b = view(p, n); decode(b); queues.get(q).push([...b]); return 0; },
    queue_get: (q, _t, out) => {
      const items = queues.get(q); if (!items) return 2; if (!items.length) return 1;
      const b = items.shift(); const p = inst.exports.cf_alloc(b.length); mem().set(b, p);
      const dv = new DataView(inst.exports.memory.buffer); dv.setInt32(out, p, true); dv.setInt32(out + 4, b.length, true); return 0;
    },
    queue_count: (q) => BigInt(queues.has(q) ? queues.get(q).length : -1),
    write: (fd, p, n) => { output += dec.decode(view(p, n)); return n; },
    log: (p, n) => { console.log(`       [guest log] ${dec.decode(view(p, n))}`); },
  };
  const module = new WebAssembly.Module(readFileSync(join(dir, file)));
  inst = new WebAssembly.Instance(module, { cf });
  // call(name, ...args): JS strings / Uint8Arrays / arrays become (ptr, len) via cf_alloc.
  const call = (name, ...args) => {
    const params = [], buffers = [];
    for (const a of args) {
      if (typeof a === "string" || a instanceof Uint8Array || Array.isArray(a)) {
        const b = typeof a === "string" ? enc.encode(a) : a instanceof Uint8Array ? a : Uint8Array.from(encode(a));
        const p = inst.exports.cf_alloc(b.length); mem().set(b, p); params.push(p, b.length); buffers.push(p);
      } else params.push(a);
    }
    result = undefined;
    try {
      const r = inst.exports[name](...params);
      return result ? result.value : r;
    } finally { buffers.forEach((p) => inst.exports.cf_free(p)); }
  };
  return { call, queues, inst, output: () => output };
}

// --- Tasks.wasm ---------------------------------------------------------------------
{
  const t = load("Tasks.wasm");
  check("Tasks imports", WebAssembly.Module.imports(new WebAssembly.Module(readFileSync(join(dir, "Tasks.wasm")))), []);
  check("cpu_bound(5_000_000)", t.call("cpu_bound", 5_000_000n), 667500000n);
  check("cpu_bound(10)", t.call("cpu_bound", 10n), 285n);
  check("cpu_bound(-3)", t.call("cpu_bound", -3n), 0n);
  check("double(21)", t.call("double", 21n), 42n);
  check("square(-12)", t.call("square", -12n), 144n);
  check("add(1, 2, 3)", t.call("add", 1n, 2n, 3n), 6n);
  check("noop()", t.call("noop"), undefined);
}

// --- Examples.wasm ------------------------------------------------------------------
{
  const e = load("Examples.wasm");
  check("producer(1)", e.call("producer", 1), 5n);
  check("queue_len(1)", e.call("queue_len", 1), 5n);
  check("queue_len(99)", e.call("queue_len", 99), -1n);
  check("consumer(1)", e.call("consumer", 1), [0n, 1n, 4n, 9n, 16n]);
  check("consumer(1) on empty queue", e.call("consumer", 1), []);
  check("put_values(2)", e.call("put_values", 2), 0);
  check("get_value(2) #1", e.call("get_value", 2, 0n), "hello");
  check("get_value(2) #2", e.call("get_value", 2, 0n), [1n, "two", 3.5, null, true]);
  check("get_value(2) empty", e.call("get_value", 2, 0n), 1);
  check("get_value(7) no queue", e.call("get_value", 7, 0n), 2);
  check("upper", e.call("upper", "hello, wörld"), "HELLO, WöRLD");
  check("upper('')", e.call("upper", ""), "");
  check("greet", e.call("greet", "Swift"), "Hello, Swift!");
  check("reverse_bytes", e.call("reverse_bytes", Uint8Array.from([1, 2, 3, 255])), Uint8Array.from([255, 3, 2, 1]));
  check("reverse_bytes(empty)", e.call("reverse_bytes", new Uint8Array()), new Uint8Array());
  check("sum_array", e.call("sum_array", [1n, -2n, 3n, 1n << 40n]), 2n + (1n << 40n));
  check("sum_array([])", e.call("sum_array", []), 0n);
  traps("sum_array(['x'])", () => e.call("sum_array", ["x"]), /unreachable/);
  const nested = [null, false, true, -1n, 0n, 63n, 64n, -64n, -65n, 9223372036854775807n, -9223372036854775808n,
    2.5, -0.0, "", "héllo", new Uint8Array([0, 1, 2]), [[], [1n, ["deep"]]], { queue: 3 }];
  check("describe(round trip)", e.call("describe", nested), nested);
  check("log_hello", e.call("log_hello"), undefined);
  e.call("print_hello");
  check("print_hello -> cf.write", e.output(), "hello from print in Examples.wasm\n");
  check("divide(7, -2)", e.call("divide", 7n, -2n), -3n);
  traps("divide(1, 0)", () => e.call("divide", 1n, 0n), /divi/i);
  traps("trap_unreachable", () => e.call("trap_unreachable"), /unreachable/);
  traps("recurse(0)", () => e.call("recurse", 0n), /call stack/i);
  check("recurse_depth(1000)", e.call("recurse_depth", 1000n), 1000n);
  const pages = e.call("memory_pages");
  check("grow_memory(3) returns old size", e.call("grow_memory", 3), pages);
  check("memory_pages after grow", e.call("memory_pages"), pages + 3);
  check("allocate_mib(8)", e.call("allocate_mib", 8), 1);
  check("allocate_mib(8) again (reuses the block)", e.call("allocate_mib", 8), 1);
  check("memory stayed ~8 MiB", e.call("memory_pages") < pages + 3 + 8 * 16 + 20, true);
  check("allocate_mib(5000)", e.call("allocate_mib", 5000), 0);
  traps("return_bad_pointer", () => e.call("return_bad_pointer"), /bad pointer/);
  check("still works after traps", e.call("greet", "again"), "Hello, again!");
  // many allocations: exercise free lists
  for (let i = 0; i < 2000; i++) e.call("greet", "x".repeat(i % 300));
  check("memory after 2000 greets", e.call("memory_pages") < pages + 3 + 8 * 16 + 20, true);
}

// --- faults.wasm ----------------------------------------------------------------------
{
  const f = load("faults.wasm");
  check("divide(-9, 2)", f.call("divide", -9n, 2n), -4n);
  traps("divide(1, 0)", () => f.call("divide", 1n, 0n), /divi/i);
  traps("divide(MIN, -1)", () => f.call("divide", -(1n << 63n), -1n), /overflow|unrepresentable/i);
  traps("load_oob", () => f.call("load_oob"), /out of bounds/i);
  check("rev", f.call("rev", "abc"), "cba");
  const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 7) & 255);
  const adler = (d) => { const z = deflateSync(d, { level: 0 }); return BigInt(new DataView(z.buffer, z.byteOffset + z.length - 4).getUint32(0)); };
  check("checksum = adler32", f.call("checksum", data), adler(data));
  check("log_c", f.call("log_c"), undefined);
}

console.log(failures ? `${failures} FAILED` : "all passed");
process.exit(failures ? 1 : 0);
