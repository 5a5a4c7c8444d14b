-- How many rows of each summary disagree with the event log (reads the whole log once).
select summary, count(*)
from public.engagement_summary_drift()
group by summary
order by summary
