CREATE OR REPLACE FUNCTION public.lag_partition_status_live(status_window interval DEFAULT '00:15:00'::interval)
 RETURNS TABLE(service_name text, consumer_group_id text, topic_name text, partition integer, status text, samples integer, first_timestamp timestamp with time zone, last_timestamp timestamp with time zone, first_committed_offset bigint, last_committed_offset bigint, first_lag bigint, last_lag bigint, log_end_offset bigint, time_lag_ms bigint, member_count integer, group_state text, first_log_end_offset bigint, log_start_offset bigint, evidence text, group_type text)
 LANGUAGE sql
 STABLE
AS $function$
-- lag_partition_status computed from the history now (lag_partition_status serves a copy of this
-- kept by refresh_lag_partition_status while the history has not changed since).
--
-- Each partition is judged against its own pace, from its samples of the last status_window in
-- time order (loomctl.lag.verdicts.judge is the Python twin; tests/lag/test_verdict_rules.py holds
-- the two equal row by row). A commit is seen where the committed offset differs from the sample
-- before. The partition has been WAITING since the later of its last commit seen and its last
-- sample with lag 0: for that long it has had messages to consume and nobody committed any.
-- Its NORMAL wait is the time its recent commits lie apart (the span of the commits seen in the
-- window over their number less one; unknown below two), and never less than the sampling interval.
-- In order:
--   ERR     no committed offset while the partition holds data (lag unknown, not 0);
--   OK      lag 0 at the last sample (a quiet or caught-up partition is never flagged);
--   -       a single sample with lag: nothing to compare yet, so not judged (unknown, never OK);
--   STOP    nobody is left to commit (no members, or the group Empty or Dead), the lag grew while
--           waiting (or the offset was still for the whole window), and the wait is past its normal:
--           a consumer that committed every few seconds is STOP a few seconds after it left,
--           however long it had been caught up before (Burrow's rule: the time since the last
--           commit against the span of the recent ones);
--   STALL   the same with members present (samples a service reported itself count as present):
--           they poll but commit no progress, for three normal waits (counting the sampling interval
--           in which the last commit fell); where the pace is unknown
--           (fewer than two commits in the window) for the service's max_poll_interval_ms (a slow
--           consumer that commits every few minutes within it is not stalled), at least three
--           sampling intervals;
--   REWIND  the committed offset went back: it is below the highest of the window, until the
--           consumer reads past that old high again;
--   WARN    the committed offset moves, but the lowest lag of each third of the window is above
--           the lowest of the third before (of the thirds the partition has samples in, at least
--           two), by more than half of what is produced between two samples (less is a consumer
--           keeping up within a batch): lag keeps growing. Troughs, not every sample: a consumer
--           that commits per batch, sampled at fixed times, shows a sawtooth whose teeth say
--           nothing; what its commits leave behind is the trough;
--   OK      otherwise.
-- time_lag_ms is the collector's (interpolated from stored log-end offsets) at the last sample;
-- where a sample has none (record_consumer_lag), it is the last lag over the produce rate of the
-- window: the age of the oldest unconsumed message if producers kept that rate.
--
-- A single SELECT in a STABLE SQL function is inlined by the planner, so a caller's filter
-- (WHERE consumer_group_id = ...) reaches the scan of consumer_lag_history: the window function
-- partitions by the group, so the filter is pushed below it. Only the window's rows are read:
-- "timestamp" > now() - window prunes the daily partitions to the last one or two. They are
-- sorted once (by partition and time, C collation) for the commits seen; everything else is
-- one hashed aggregate over them.
WITH window_thirds AS (
    -- Thirds of the sampled part of the window, the same for every partition: from the first
    -- sample of the window to the last (of any partition), so a window that is not full yet
    -- (a collector that just started) or no longer (one that stopped) still has three.
    SELECT t.first_sample + (t.last_sample - t.first_sample) / 3 AS second_third,
           t.first_sample + (t.last_sample - t.first_sample) * 2 / 3 AS last_third
      FROM (SELECT min(h."timestamp") AS first_sample, max(h."timestamp") AS last_sample
              FROM public.consumer_lag_history AS h
             WHERE h."timestamp" > now() - status_window) AS t
), in_order AS (
    -- The window's samples, each with what the sample before it (of the same partition) had.
    SELECT h.*,
           lag(h."timestamp") OVER by_time IS NULL AS is_first,
           lead(h."timestamp") OVER by_time IS NULL AS is_last,
           h.committed_offset IS NOT NULL AND count(h.committed_offset) OVER by_time = 1 AS is_first_commit,
           lag(h."timestamp") OVER by_time IS NOT NULL
               AND h.committed_offset IS NOT NULL
               AND h.committed_offset IS DISTINCT FROM lag(h.committed_offset) OVER by_time AS commit_seen
      FROM public.consumer_lag_history AS h
     WHERE h."timestamp" > now() - status_window
    WINDOW by_time AS (PARTITION BY h.consumer_group_id, h.topic_name, h.partition ORDER BY h."timestamp")
), per_partition AS (
    SELECT o.consumer_group_id, o.topic_name, o.partition,
           count(*)::integer AS samples,
           coalesce(min(o."timestamp") FILTER (WHERE o.committed_offset IS NOT NULL), min(o."timestamp"))
               AS first_timestamp,
           min(o."timestamp") AS first_sample_at,
           max(o."timestamp") AS last_timestamp,
           min(o.lag) FILTER (WHERE o."timestamp" < (SELECT w.second_third FROM window_thirds AS w)) AS lowest_lag_1,
           min(o.lag) FILTER (WHERE o."timestamp" >= (SELECT w.second_third FROM window_thirds AS w)
                                AND o."timestamp" < (SELECT w.last_third FROM window_thirds AS w)) AS lowest_lag_2,
           min(o.lag) FILTER (WHERE o."timestamp" >= (SELECT w.last_third FROM window_thirds AS w)) AS lowest_lag_3,
           max(o.committed_offset) AS highest_committed_offset,
           min(o.committed_offset) AS lowest_committed_offset,
           count(*) FILTER (WHERE o.commit_seen)::integer AS commits_seen,
           min(o."timestamp") FILTER (WHERE o.commit_seen) AS first_commit_seen_at,
           max(o."timestamp") FILTER (WHERE o.commit_seen) AS last_commit_seen_at,
           -- log end offsets only grow, so the highest of a set of samples is that of its latest
           max(o.log_end_offset) FILTER (WHERE o.commit_seen) AS log_end_at_last_commit,
           max(o."timestamp") FILTER (WHERE o.lag = 0) AS zero_lag_at,
           max(o.log_end_offset) FILTER (WHERE o.lag = 0) AS log_end_at_zero_lag,
           max(o.committed_offset) FILTER (WHERE o.is_first_commit) AS first_committed_offset,
           max(o.lag) FILTER (WHERE o.is_first_commit) AS first_lag,
           coalesce(max(o.log_end_offset) FILTER (WHERE o.is_first_commit),
                    max(o.log_end_offset) FILTER (WHERE o.is_first)) AS first_log_end_offset,
           max(o.service_name) FILTER (WHERE o.is_last) AS service_name,
           max(o.committed_offset) FILTER (WHERE o.is_last) AS last_committed_offset,
           max(o.lag) FILTER (WHERE o.is_last) AS last_lag,
           max(o.log_end_offset) FILTER (WHERE o.is_last) AS log_end_offset,
           max(o.log_start_offset) FILTER (WHERE o.is_last) AS log_start_offset,
           max(o.time_lag_ms) FILTER (WHERE o.is_last) AS time_lag_ms,
           max(o.member_count) FILTER (WHERE o.is_last) AS member_count,
           max(o.group_state) FILTER (WHERE o.is_last) AS group_state,
           max(o.group_type) FILTER (WHERE o.is_last) AS group_type
      FROM in_order AS o
     GROUP BY o.consumer_group_id, o.topic_name, o.partition
), paced AS (
    -- durations in whole milliseconds (floored), so the Python twin computes the same thresholds exactly
    SELECT p.*,
           greatest(p.last_commit_seen_at, p.zero_lag_at) AS waiting_since,
           CASE WHEN p.zero_lag_at >= p.last_commit_seen_at OR p.last_commit_seen_at IS NULL
                THEN p.log_end_at_zero_lag ELSE p.log_end_at_last_commit END AS log_end_when_waiting_began,
           floor(extract(epoch FROM p.last_timestamp - coalesce(greatest(p.last_commit_seen_at, p.zero_lag_at),
                                                                p.first_sample_at)) * 1000)::bigint AS waiting_ms,
           CASE WHEN p.samples >= 2
                THEN floor(extract(epoch FROM p.last_timestamp - p.first_sample_at) * 1000)::bigint / (p.samples - 1)
           END AS sample_ms,
           CASE WHEN p.commits_seen >= 2
                THEN floor(extract(epoch FROM p.last_commit_seen_at - p.first_commit_seen_at) * 1000)::bigint
                     / (p.commits_seen - 1)
           END AS commit_ms,
           coalesce(c.max_poll_interval_ms, 300000)::bigint AS max_poll_ms,
           coalesce(p.member_count = 0 OR p.group_state IN ('Empty', 'Dead'), false) AS no_members,
           p.member_count IS NULL AND p.group_state IS NULL AS members_unknown,
           to_char(p.first_timestamp AT TIME ZONE 'UTC', 'HH24:MI:SS"Z"') AS first_at,
           to_char(p.last_timestamp AT TIME ZONE 'UTC', 'HH24:MI:SS"Z"') AS last_at
      FROM per_partition AS p
      LEFT JOIN public.pipeline_consumer_configs AS c ON c.consumer_group_id = p.consumer_group_id
), thresholds AS (
    SELECT d.*,
           greatest(d.commit_ms, d.sample_ms) AS normal_ms,
           CASE WHEN d.commit_ms IS NOT NULL THEN 3 * greatest(d.commit_ms, d.sample_ms)
                ELSE greatest(3 * d.sample_ms, d.max_poll_ms)
           END AS stall_ms,
           -- the lag grew while it waited; or nothing was committed and lag never 0 in the window
           coalesce(d.log_end_offset > d.log_end_when_waiting_began, d.waiting_since IS NULL) AS lag_grew
      FROM paced AS d
), judged AS (
    SELECT j.*,
           CASE
               WHEN j.last_committed_offset IS NULL THEN
                   CASE WHEN j.log_end_offset > coalesce(j.log_start_offset, 0) THEN 'ERR' ELSE 'OK' END
               WHEN j.last_lag = 0 THEN 'OK'
               WHEN j.samples < 2 THEN '-'
               WHEN j.no_members AND j.lag_grew AND j.waiting_ms >= j.normal_ms THEN 'STOP'
               -- the last commit fell in the sampling interval before the wait began: counted, so a member
               -- is STALL three of its commit intervals after its last commit, not after the sample that saw it
               WHEN NOT j.no_members AND j.lag_grew AND j.waiting_ms + j.sample_ms >= j.stall_ms THEN 'STALL'
               WHEN j.last_committed_offset < j.highest_committed_offset THEN 'REWIND'
               WHEN num_nonnulls(j.lowest_lag_1, j.lowest_lag_2, j.lowest_lag_3) >= 2
                    AND coalesce(j.lowest_lag_1 < coalesce(j.lowest_lag_2, j.lowest_lag_3), true)
                    AND coalesce(j.lowest_lag_2 < j.lowest_lag_3, true)
                    -- and by more than half a sampling interval's production: a consumer that
                    -- keeps up within a batch or two shows small troughs that jitter upwards
                    AND coalesce(j.lowest_lag_3, j.lowest_lag_2) - coalesce(j.lowest_lag_1, j.lowest_lag_2)
                        > (j.log_end_offset - j.first_log_end_offset)::numeric / greatest(j.samples - 1, 1) / 2
                   THEN 'WARN'
               ELSE 'OK'
           END AS status
      FROM thresholds AS j
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
                      v.log_end_offset - coalesce(v.log_start_offset, 0), coalesce(v.log_start_offset, 0),
                      v.log_end_offset)
           WHEN v.last_committed_offset IS NULL THEN
               'no committed offset and no data: nothing to consume'
           WHEN v.last_lag = 0 THEN
               format('lag 0 at %s (first sample %s: lag %s)', v.last_at, v.first_at, v.first_lag)
           WHEN v.samples < 2 THEN
               format('one sample, at %s: nothing to compare yet', v.last_at)
           WHEN v.status IN ('STOP', 'STALL') THEN
               format('no commit for %s s while lag grew to %s (committed offset %s); %s; %s',
                      round(v.waiting_ms / 1000.0), v.last_lag, v.last_committed_offset,
                      CASE
                          WHEN v.commit_ms IS NOT NULL THEN
                              format('it committed every %s s before', trim_scale(round(v.commit_ms / 1000.0, 1)))
                          WHEN v.status = 'STALL' THEN
                              format('its pace unknown, past max_poll_interval_ms (%s s)', round(v.max_poll_ms / 1000.0))
                          ELSE format('sampled every %s s', trim_scale(round(v.sample_ms / 1000.0, 1)))
                      END,
                      CASE
                          WHEN v.no_members THEN
                              format('the group has no members (%s)', coalesce(v.group_state, '0 members'))
                          WHEN v.members_unknown THEN 'group membership unknown (samples reported by the service)'
                          ELSE format('%s members (%s) are not committing progress',
                                      coalesce(v.member_count::text, 'some'), coalesce(v.group_state, 'state unknown'))
                      END)
           WHEN v.status = 'REWIND' THEN
               format('committed offset went back: %s at %s, below the %s it had reached in the window; lag %s',
                      v.last_committed_offset, v.last_at, v.highest_committed_offset, v.last_lag)
           WHEN v.status = 'WARN' THEN
               format('lowest lag of each third of the window rose %s (lag %s -> %s) while the committed offset '
                      'moved %s -> %s from %s to %s: the consumer is slower than the producers',
                      concat_ws(' -> ', v.lowest_lag_1, v.lowest_lag_2, v.lowest_lag_3),
                      coalesce(v.first_lag::text, 'unknown'), v.last_lag,
                      coalesce(v.first_committed_offset::text, 'none'), v.last_committed_offset, v.first_at, v.last_at)
           ELSE
               format('committed offset %s -> %s, lag %s -> %s from %s to %s',
                      coalesce(v.first_committed_offset::text, 'none'), v.last_committed_offset,
                      coalesce(v.first_lag::text, 'unknown'), v.last_lag, v.first_at, v.last_at)
               || CASE WHEN v.waiting_since IS NOT NULL AND v.last_lag > 0 AND v.no_members THEN
                           format('; no members, waiting %s s of a normal %s s', round(v.waiting_ms / 1000.0),
                                  trim_scale(round(v.normal_ms / 1000.0, 1)))
                       ELSE '' END
       END
       || CASE WHEN v.last_committed_offset < v.log_start_offset
               THEN format('; committed offset is below the log start offset %s: messages were lost to retention',
                           v.log_start_offset)
               ELSE '' END AS evidence,
       -- classic or consumer (KIP-848) as the broker described the group at the last sample;
       -- NULL for samples a service reported itself (record_consumer_lag)
       v.group_type
  FROM judged AS v
$function$
