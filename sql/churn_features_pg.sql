-- Features of every customer for the run date, from the warehouse.
-- {{ ds }} is sent as a bound DATE parameter ($1::date), never pasted into the text:
-- write it without quotes.
SELECT *
FROM churn_features
WHERE ds = {{ ds }}
