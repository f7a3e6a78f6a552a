-- A shop: inserts through a recursive CTE, indexes, joins, group by, updates and deletes.
CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, country TEXT, note TEXT);
CREATE TABLE orders(id INTEGER PRIMARY KEY, cust INTEGER, day INTEGER, total REAL, sku TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
INSERT INTO customer SELECT i, 'cust' || i || substr(hex(randomblob(8)), 1, abs(random()) % 16), char(65 + i % 26, 65 + (i / 26) % 26), hex(randomblob(abs(random()) % 60)) FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200000)
INSERT INTO orders SELECT i, 1 + abs(random()) % 40000, abs(random()) % 365, (abs(random()) % 100000) / 100.0, 'SKU' || (abs(random()) % 5000) FROM n;
CREATE INDEX o_cust ON orders(cust);
CREATE INDEX o_sku ON orders(sku, day);
SELECT country, count(*), round(sum(total), 2) FROM customer JOIN orders ON orders.cust = customer.id GROUP BY country ORDER BY 3 DESC LIMIT 5;
SELECT sku, count(*) AS c, group_concat(DISTINCT day) FROM orders GROUP BY sku ORDER BY c DESC LIMIT 3;
UPDATE customer SET note = upper(note) || name WHERE id % 3 = 0;
DELETE FROM orders WHERE day % 5 = 0;
SELECT name, (SELECT count(*) FROM orders WHERE cust = customer.id) AS n FROM customer ORDER BY n DESC, name LIMIT 5;
SELECT count(*), sum(length(note)) FROM customer WHERE note LIKE '%A%';
