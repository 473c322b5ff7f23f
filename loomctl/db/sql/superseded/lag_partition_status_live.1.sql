CREATE OR REPLACE FUNCTION public.lag_partition_status_live(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS TABLE(service_name text, consumer_group_id text, topic_name text, partition integer, status text, samples integer, first_timestamp timestamp with time zone, last_timestamp timestamp with time zone, first_committed_offset bigint, last_committed_offset bigint, first_lag bigint, last_lag bigint, log_end_offset bigint, time_lag_ms bigint, member_count integer, group_state text, first_log_end_offset bigint, log_start_offset bigint, evidence text, group_type text)
 LANGUAGE sql
 STABLE
AS $function$
-- lag_partition_status computed from the history now (lag_partition_status serves a copy of this
-- kept by refresh_lag_partition_status while the history has not changed since).
-- The status of each partition from its stored samples of the last status_window (rules like
-- Burrow's), with the evidence: the first (with a commit) and the last sample of the window. In order:
--   ERR     no committed offset while the partition holds data (lag unknown, not 0);
--   OK      lag 0 at the last sample (a quiet or caught-up partition is never flagged);
--   REWIND  the committed offset went back: the last is below the highest of the window, or
--           the first is above the lowest. A rewind already made up within the window (read
--           again past its old high) is not seen: seeing it takes every pair of neighbouring
--           samples, i.e. sorting the window's rows, which doubles the monitor's time;
--   OK      lag was 0 at some sample of the window (the consumer caught up recently);
--   OK      fewer than 3 samples: too few to judge a trend;
--   STOP    the committed offset did not move over the window while lag > 0, and the group
--           has no members (Empty, Dead or 0 members): nobody is left to commit;
--   STALL   the committed offset did not move over the window while lag > 0, with members
--           present (they poll but commit no progress). Samples that carry no membership
--           (record_consumer_lag from a service reporting its own lag) count as present: the
--           service that reports is running;
--   WARN    the committed offset moves, but the lowest lag of each third of the window is
--           above the lowest of the third before (of the thirds the partition has samples
--           in, at least two), and it grew by more than half of what is produced between
--           two samples (less is a consumer keeping up within a batch): lag keeps growing. Troughs, not every
--           sample: a consumer that commits per batch, sampled at fixed times, shows a
--           sawtooth whose teeth say nothing; what its commits leave behind is the trough
--           (Burrow judges lag at commits for the same reason);
--   OK      otherwise.
-- time_lag_ms is the collector's (interpolated from stored log-end offsets) at the last sample;
-- where a sample has none (record_consumer_lag), it is the last lag over the produce rate of the
-- window: the age of the oldest unconsumed message if producers kept that rate.
-- A single SELECT in a STABLE SQL function is inlined by the planner, so a caller's filter
-- (WHERE consumer_group_id = ...) reaches the scan of consumer_lag_history. Only the window's
-- rows are read: "timestamp" > now() - window prunes the daily partitions to the last one or
-- two, and ix_consumer_lag_history_timestamp reads the window's rows from them. Two hashed
-- passes over those rows (no sort of them; 45,000 rows sorted on their text keys took longer
-- than the whole of this) give the per-partition figures and then the first and last samples.
WITH b AS (
    -- Thirds of the sampled part of the window, the same for every partition: from the first
    -- sample of the window to the last (of any partition), so a window that is not full yet
    -- (a collector that just started) or no longer (one that stopped) still has three.
    -- One row, read as scalars below.
    SELECT t.first_sample + (t.last_sample - t.first_sample) / 3 AS second_third,
           t.first_sample + (t.last_sample - t.first_sample) * 2 / 3 AS last_third
      FROM (SELECT min(h."timestamp") AS first_sample, max(h."timestamp") AS last_sample
              FROM public.consumer_lag_history AS h
             WHERE h."timestamp" > now() - status_window) AS t
), a AS (
    -- One pass over the window's rows, hashed by partition: nothing sorts them.
    SELECT h.consumer_group_id, h.topic_name, h.partition,
           count(*)::integer AS samples,
           -- the first sample that has a commit: one taken before the group's first commit
           -- would make the window's first lag and offset unknown
           coalesce(min(h."timestamp") FILTER (WHERE h.committed_offset IS NOT NULL), min(h."timestamp")) AS first_timestamp,
           max(h."timestamp") AS last_timestamp,
           min(h.lag) FILTER (WHERE h."timestamp" < (SELECT b.second_third FROM b)) AS lowest_lag_1,
           min(h.lag) FILTER (WHERE h."timestamp" >= (SELECT b.second_third FROM b)
                                AND h."timestamp" < (SELECT b.last_third FROM b)) AS lowest_lag_2,
           min(h.lag) FILTER (WHERE h."timestamp" >= (SELECT b.last_third FROM b)) AS lowest_lag_3,
           max(h."timestamp") FILTER (WHERE h.lag = 0) AS zero_lag_at,
           max(h.committed_offset) AS highest_committed_offset,
           min(h.committed_offset) AS lowest_committed_offset
      FROM public.consumer_lag_history AS h
     WHERE h."timestamp" > now() - status_window
     GROUP BY h.consumer_group_id, h.topic_name, h.partition
), s AS (
    -- The first and the last sample of each partition: the window's rows again, hashed by
    -- partition and kept where the time is the partition's first or last.
    SELECT a.consumer_group_id, a.topic_name, a.partition, a.samples, a.first_timestamp, a.last_timestamp,
           a.lowest_lag_1, a.lowest_lag_2, a.lowest_lag_3, a.zero_lag_at, a.highest_committed_offset,
           a.lowest_committed_offset,
           max(x.service_name) FILTER (WHERE x."timestamp" = a.last_timestamp) AS service_name,
           max(x.committed_offset) FILTER (WHERE x."timestamp" = a.first_timestamp) AS first_committed_offset,
           max(x.committed_offset) FILTER (WHERE x."timestamp" = a.last_timestamp) AS last_committed_offset,
           max(x.lag) FILTER (WHERE x."timestamp" = a.first_timestamp) AS first_lag,
           max(x.lag) FILTER (WHERE x."timestamp" = a.last_timestamp) AS last_lag,
           max(x.log_end_offset) FILTER (WHERE x."timestamp" = a.first_timestamp) AS first_log_end_offset,
           max(x.log_end_offset) FILTER (WHERE x."timestamp" = a.last_timestamp) AS log_end_offset,
           max(x.log_start_offset) FILTER (WHERE x."timestamp" = a.last_timestamp) AS log_start_offset,
           max(x.time_lag_ms) FILTER (WHERE x."timestamp" = a.last_timestamp) AS time_lag_ms,
           max(x.member_count) FILTER (WHERE x."timestamp" = a.last_timestamp) AS member_count,
           max(x.group_state) FILTER (WHERE x."timestamp" = a.last_timestamp) AS group_state,
           max(x.group_type) FILTER (WHERE x."timestamp" = a.last_timestamp) AS group_type
      FROM a
      JOIN public.consumer_lag_history AS x
        ON x.consumer_group_id = a.consumer_group_id AND x.topic_name = a.topic_name AND x.partition = a.partition
       AND x."timestamp" IN (a.first_timestamp, a.last_timestamp)
     WHERE x."timestamp" > now() - status_window
     GROUP BY a.consumer_group_id, a.topic_name, a.partition, a.samples, a.first_timestamp, a.last_timestamp,
              a.lowest_lag_1, a.lowest_lag_2, a.lowest_lag_3, a.zero_lag_at, a.highest_committed_offset,
              a.lowest_committed_offset
), r AS (
    SELECT s.*,
           s.zero_lag_at IS NOT NULL AS lag_was_zero,
           s.highest_committed_offset <> s.lowest_committed_offset AS offset_moved,
           to_char(s.first_timestamp AT TIME ZONE 'UTC', 'HH24:MI:SS"Z"') AS first_at,
           to_char(s.last_timestamp AT TIME ZONE 'UTC', 'HH24:MI:SS"Z"') AS last_at,
           (s.member_count = 0 OR s.group_state IN ('Empty', 'Dead')) AS no_members,
           s.member_count IS NULL AND s.group_state IS NULL AS members_unknown
      FROM s
), v AS (
    SELECT r.*,
           CASE
               WHEN r.last_committed_offset IS NULL THEN
                   CASE WHEN r.log_end_offset > coalesce(r.log_start_offset, 0) THEN 'ERR' ELSE 'OK' END
               WHEN r.last_lag = 0 THEN 'OK'
               WHEN r.last_committed_offset < r.highest_committed_offset
                    OR r.first_committed_offset > r.lowest_committed_offset THEN 'REWIND'
               WHEN r.lag_was_zero THEN 'OK'
               WHEN r.samples < 3 THEN 'OK'
               WHEN NOT r.offset_moved AND r.no_members THEN 'STOP'
               WHEN NOT r.offset_moved THEN 'STALL'
               WHEN num_nonnulls(r.lowest_lag_1, r.lowest_lag_2, r.lowest_lag_3) >= 2
                    AND coalesce(r.lowest_lag_1 < coalesce(r.lowest_lag_2, r.lowest_lag_3), true)
                    AND coalesce(r.lowest_lag_2 < r.lowest_lag_3, true)
                    -- and by more than half a sampling interval's production: a consumer that
                    -- keeps up within a batch or two shows small troughs that jitter upwards
                    AND coalesce(r.lowest_lag_3, r.lowest_lag_2) - coalesce(r.lowest_lag_1, r.lowest_lag_2)
                        > (r.log_end_offset - r.first_log_end_offset)::numeric / greatest(r.samples - 1, 1) / 2 THEN 'WARN'
               ELSE 'OK'
           END AS status
      FROM r
)
SELECT v.service_name, v.consumer_group_id, v.topic_name, v.partition, v.status, v.samples,
       v.first_timestamp, v.last_timestamp, v.first_committed_offset, v.last_committed_offset,
       v.first_lag, v.last_lag, v.log_end_offset,
       coalesce(v.time_lag_ms,
                CASE
                    WHEN v.last_lag = 0 THEN 0
                    WHEN v.log_end_offset > v.first_log_end_offset THEN
                        round(v.last_lag * extract(epoch FROM v.last_timestamp - v.first_timestamp) * 1000
                              / (v.log_end_offset - v.first_log_end_offset))::bigint
                END) AS time_lag_ms,
       v.member_count, v.group_state,
       v.first_log_end_offset, v.log_start_offset,
       CASE
           WHEN v.last_committed_offset IS NULL AND v.status = 'ERR' THEN
               format('lag unknown: no committed offset while the partition holds %s messages (offsets %s to %s)',
                      v.log_end_offset - coalesce(v.log_start_offset, 0), coalesce(v.log_start_offset, 0), v.log_end_offset)
           WHEN v.last_committed_offset IS NULL THEN
               'no committed offset and no data: nothing to consume'
           WHEN v.last_lag = 0 THEN
               format('lag 0 at %s (first sample %s: lag %s)', v.last_at, v.first_at, v.first_lag)
           WHEN v.status = 'REWIND' AND v.last_committed_offset < v.highest_committed_offset THEN
               format('committed offset went back: %s at %s, below the %s it had reached in the window; lag %s',
                      v.last_committed_offset, v.last_at, v.highest_committed_offset, v.last_lag)
           WHEN v.status = 'REWIND' THEN
               format('committed offset went back from %s at %s (first sample) to %s; lag %s at %s',
                      v.first_committed_offset, v.first_at, v.lowest_committed_offset, v.last_lag, v.last_at)
           WHEN v.lag_was_zero THEN
               format('lag was 0 at %s, %s at %s: the consumer catches up',
                      to_char(v.zero_lag_at AT TIME ZONE 'UTC', 'HH24:MI:SS"Z"'), v.last_lag, v.last_at)
           WHEN v.samples < 3 THEN
               format('%s samples from %s to %s: too few to judge a trend', v.samples, v.first_at, v.last_at)
           WHEN v.status IN ('STOP', 'STALL') THEN
               format('committed offset stayed at %s from %s to %s while lag went %s -> %s; %s',
                      v.last_committed_offset, v.first_at, v.last_at, v.first_lag, v.last_lag,
                      CASE
                          WHEN v.no_members THEN format('the group has no members (%s)', coalesce(v.group_state, '0 members'))
                          WHEN v.members_unknown THEN 'group membership unknown (samples reported by the service)'
                          ELSE format('%s members (%s) are not committing progress',
                                      coalesce(v.member_count::text, 'some'), coalesce(v.group_state, 'state unknown'))
                      END)
           WHEN v.status = 'WARN' THEN
               format('lowest lag of each third of the window rose %s (lag %s -> %s) while the committed offset moved %s -> %s from %s to %s: the consumer is slower than the producers',
                      concat_ws(' -> ', v.lowest_lag_1, v.lowest_lag_2, v.lowest_lag_3), coalesce(v.first_lag::text, 'unknown'),
                      v.last_lag, coalesce(v.first_committed_offset::text, 'none'), v.last_committed_offset, v.first_at, v.last_at)
           ELSE
               format('committed offset %s -> %s, lag %s -> %s from %s to %s',
                      coalesce(v.first_committed_offset::text, 'none'), v.last_committed_offset,
                      coalesce(v.first_lag::text, 'unknown'), v.last_lag, v.first_at, v.last_at)
       END
       || CASE WHEN v.last_committed_offset < v.log_start_offset
               THEN format('; committed offset is below the log start offset %s: messages were lost to retention', v.log_start_offset)
               ELSE '' END AS evidence,
       -- classic or consumer (KIP-848) as the broker described the group at the last sample;
       -- NULL for samples a service reported itself (record_consumer_lag)
       v.group_type
  FROM v
$function$
