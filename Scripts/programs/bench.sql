-- The SQLite workload of the program corpus: run.py puts `CREATE TABLE config AS SELECT N AS n;` in
-- front (N rows; in memory). Inserts, an index, grouping, joins, window functions, strings, updates
-- and deletes; every statement prints something the run compares with the native build's output.
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, name TEXT, v REAL);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < (SELECT n FROM config))
INSERT INTO t SELECT i, (i * 7919) % 1000, printf('w%d', (i * 31337) % 5000), (i % 997) * 1.5 FROM c;
CREATE INDEX t_k ON t(k);
CREATE INDEX t_name ON t(name, v);
SELECT k, count(*), sum(v), min(name), max(name) FROM t GROUP BY k ORDER BY sum(v) DESC, k LIMIT 5;
SELECT count(DISTINCT name), count(*) FROM t;
SELECT sum(length(upper(name) || lower(name))), count(*) FROM t WHERE name LIKE 'w1%';
SELECT a.k, count(*) FROM t AS a JOIN t AS b ON a.id = b.id + 1 WHERE a.k < b.k GROUP BY a.k ORDER BY 2 DESC, 1 LIMIT 3;
SELECT max(s), min(s) FROM (SELECT sum(v) OVER (ORDER BY id ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS s FROM t);
SELECT name, rank() OVER (ORDER BY total DESC) FROM (SELECT name, sum(v) AS total FROM t GROUP BY name) ORDER BY total DESC, name LIMIT 3;
SELECT count(*) FROM t WHERE k IN (SELECT k FROM t WHERE name = 'w42');
UPDATE t SET v = v * 2 WHERE k < 500;
DELETE FROM t WHERE k % 3 = 0;
SELECT count(*), total(v), sum(id) FROM t;
SELECT hex(substr(group_concat(name, ','), 1, 40)), length(group_concat(name, ',')) FROM (SELECT name FROM t ORDER BY v DESC, id LIMIT 20000);
