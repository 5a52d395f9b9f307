-- A mixed workload for the corpus: calls, tables, strings, closures and floating point.
local scale = tonumber(arg and arg[1]) or 1
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local total = fib(24 + scale)
local t = {}
for i = 1, 200000 * scale do t[i] = (i * 7919) % 100003 end
table.sort(t)
local sum = 0
for i = 1, #t, 97 do sum = sum + t[i] end
local parts = {}
for i = 1, 50000 * scale do parts[#parts + 1] = string.format("%d:%x", i, i * 31) end
local text = table.concat(parts, ",")
local count = 0
for word in text:gmatch("%d+:") do count = count + 1 end
local function counter() local c = 0 return function() c = c + 1 return c end end
local next = counter()
for _ = 1, 300000 * scale do next() end
local x = 0.0
for i = 1, 1000000 * scale do x = x + math.sin(i) * math.sqrt(i) end
print(total, sum, #text, count, next(), string.format("%.6f", x))
