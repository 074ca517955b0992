-- Every data-plane call writes a log row, so each index on the table is paid at the request
-- rate (at 20,000 req/s PostgreSQL spent 16 % of the machine's CPU on these inserts, half of it
-- in B-tree inserts).
-- Nothing looks entries up by request id.
DROP INDEX pubfn.request_logs_by_request;
-- Rows arrive in created_at order, so a BRIN index finds the aged ones for pruning at a
-- fraction of a B-tree's upkeep.
DROP INDEX pubfn.request_logs_by_age;
CREATE INDEX request_logs_by_age ON pubfn.request_logs USING brin (created_at);
