"""`fleet costs --by variant`: per A/B variant, what its workflows cost and how they
ran (LLM latency, failures, structured-output repairs), so a cheaper model can be chosen
on evidence. Workflows without a variant are left out."""

from __future__ import annotations

from datetime import datetime

from worker.store.pool import Connects, Row

__all__ = ["variant_breakdown"]

_VARIANTS = """
WITH w AS (
    SELECT id, type, variant, status FROM workflows
     WHERE variant IS NOT NULL AND created_at >= %(since)s
       AND (%(user)s::text IS NULL OR user_id = %(user)s)
), c AS (
    SELECT workflow_id, sum(cost_usd) AS usd, sum(duration_ms) AS ms, count(*) AS calls,
           bool_or(repair) AS repaired, bool_or(outcome <> 'ok') AS errored
      FROM llm_calls
     WHERE variant IS NOT NULL AND created_at >= %(since)s
       AND (%(user)s::text IS NULL OR user_id = %(user)s)
     GROUP BY workflow_id
)
SELECT w.type AS intent, w.variant, count(*) AS workflows,
       count(*) FILTER (WHERE w.status = 'completed') AS completed,
       coalesce(sum(c.calls), 0)::int AS calls, coalesce(sum(c.usd), 0) AS usd,
       coalesce(sum(c.usd) / nullif(count(c.workflow_id), 0), 0) AS per_workflow_usd,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY c.ms) AS llm_p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY c.ms) AS llm_p95_ms,
       round(count(*) FILTER (WHERE w.status = 'failed')::numeric / count(*), 4) AS failure_rate,
       round(count(*) FILTER (WHERE c.errored)::numeric / count(*), 4) AS call_error_rate,
       round(count(*) FILTER (WHERE c.repaired)::numeric / count(*), 4) AS repair_rate
  FROM w LEFT JOIN c ON c.workflow_id = w.id
 GROUP BY 1, 2 ORDER BY 1, 2
"""


async def variant_breakdown(db: Connects, since: datetime, user: str | None = None) -> list[Row]:
    """One row per (intent type, variant) of workflows created since ``since``."""
    async with db.connection() as conn:
        cur = await conn.execute(_VARIANTS, {"since": since, "user": user})
        return await cur.fetchall()
