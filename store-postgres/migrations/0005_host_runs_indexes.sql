-- Every checkpoint rewrites its run's row and, because updated_at is
-- indexed (the seed's idx_host_runs_updated), inserts into every index of
-- host_runs: index upkeep is a large share of a fenced write. Two indexes
-- were redundant:
-- - the seed's idx_host_runs_plan_host (plan_id, host_id) duplicated the
--   unique constraint's index; the constraint now carries the seed's name;
-- - host_runs_owner served only release_all, which the partial index of
--   running runs serves as well (a worker's runs are running runs).
DROP INDEX idx_host_runs_plan_host;
ALTER TABLE host_runs RENAME CONSTRAINT one_run_per_plan_host TO idx_host_runs_plan_host;
DROP INDEX host_runs_owner;
