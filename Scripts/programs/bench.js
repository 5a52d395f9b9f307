// The QuickJS workload of the program corpus (run.py defines SCALE in front of it): BigInt arithmetic
// (digits of pi by Machin's formula), objects and arrays, sorting, strings, closures and JSON. It prints
// only what every correct JavaScript engine prints alike.
function arctanInverse(x, unity) {
  let sum = unity / x, term = sum, n = 1n, xSquared = x * x, sign = -1n;
  while (term !== 0n) {
    term /= xSquared;
    n += 2n;
    sum += sign * (term / n);
    sign = -sign;
  }
  return sum;
}
function piDigits(digits) {
  const unity = 10n ** BigInt(digits + 10);
  const pi = 4n * (4n * arctanInverse(5n, unity) - arctanInverse(239n, unity));
  return (pi / 10n ** 10n).toString();
}
function records(count) {
  const list = [];
  let seed = 19;
  for (let i = 0; i < count; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    list.push({ id: i, key: seed % 1000, name: "n" + (seed % 7919).toString(36), value: (seed % 10007) / 7 });
  }
  return list;
}
function work(count) {
  const list = records(count);
  list.sort((a, b) => a.key - b.key || a.name.localeCompare(b.name) || a.id - b.id);
  const groups = new Map();
  for (const item of list) {
    const group = groups.get(item.key) || { count: 0, total: 0, names: new Set() };
    group.count++;
    group.total += item.value;
    group.names.add(item.name);
    groups.set(item.key, group);
  }
  let checksum = 0;
  for (const [key, group] of groups) checksum = (checksum * 31 + key * group.count + group.names.size) % 1000000007;
  const text = JSON.stringify(list.slice(0, 2000));
  const parsed = JSON.parse(text);
  const words = list.map((item) => item.name.toUpperCase()).filter((name) => name.length > 2).join(" ");
  const counter = (() => { let n = 0; return (k) => (n += k); })();
  for (let i = 0; i < count; i++) counter(i % 13);
  return [checksum, parsed.length, text.length, words.length, counter(0)].join(" ");
}
const digits = piDigits(2000 * SCALE);
console.log(digits.length, digits.slice(0, 20), digits.slice(-20));
console.log(work(100000 * SCALE));
