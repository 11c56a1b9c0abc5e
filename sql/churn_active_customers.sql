-- Customers active in the last 30 days, for the run date's partition.
-- `ds` comes from the hive folders (ds=YYYY-MM-DD) and is a DATE; comparing it
-- with a 'YYYY-MM-DD' literal lets Polars prune every other partition.
SELECT *
FROM features
WHERE ds = '{{ ds }}'
  AND num_logins_30d > 0
