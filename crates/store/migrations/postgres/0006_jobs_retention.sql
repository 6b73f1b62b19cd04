-- Pruning succeeded jobs (`inkingi jobs prune`, the worker's retention) walks them oldest first.
-- Partial, so it holds only the history, which the other job indexes leave out or mix with the
-- backlog.
CREATE INDEX jobs_succeeded_finished ON jobs (finished_at) WHERE status = 'succeeded';
