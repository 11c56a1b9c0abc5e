"""Deterministic generator of the example customer-churn dataset.

Writes hive-partitioned Parquet under ``--out`` (default ``data/churn``):

- ``features/ds=YYYY-MM-DD/part-0.parquet``: one row per active customer and day,
  20 features with nulls and outliers;
- ``labels/ds=YYYY-MM-DD/part-0.parquet``: ``customer_id, churned`` for each day
  whose outcome is known, i.e. all but the last ``--label-lag`` days (labels arrive later).

The last ``--drift-days`` days drift on purpose (higher charges, more support
calls, a new ``family`` plan, a shift of regions and devices) so that drift
reports have something to find. The ``--flip-dates`` (default 2026-11-06 and
2026-11-07) keep every column's distribution but flip a correlation: total
charges are paired with tenure in reverse rank order, so long-standing customers
get the smallest totals. Per-column drift cannot see it; multivariate drift (the
PCA reconstruction error of the model's features) must. Same arguments, same
bytes of data: every day draws from its own seeded generator.

    python python/make_churn_data.py --out data/churn --days 60 --rows 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

import numpy as np
import polars as pl

PLANS = ["basic", "standard", "premium", "enterprise"]
REGIONS = ["north", "south", "east", "west", "central", "coastal", "mountain", "islands"]
PAYMENTS = ["card", "bank_transfer", "paypal", "invoice"]
CONTRACTS = ["month-to-month", "one-year", "two-year"]
DEVICES = ["ios", "android", "web", "other"]


def _with_nulls(rng: np.random.Generator, values: np.ndarray, frac: float) -> list:
    mask = rng.random(len(values)) < frac
    out = values.astype(object)
    out[mask] = None
    return out.tolist()


def make_day(
    day_index: int, n_rows: int, n_customers: int, drifted: bool, seed: int, flipped: bool = False,
    id_offset: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng([seed, day_index])
    ids = np.sort(rng.choice(n_customers, size=n_rows, replace=False)).astype(np.int64) + 100_000 + id_offset
    # Per-customer stable traits come from a generator seeded by the id.
    age = rng.normal(44, 14, n_rows).clip(18, 95)
    age[rng.random(n_rows) < 0.002] = 150.0  # data-entry outliers
    tenure = rng.gamma(2.0, 14.0, n_rows).astype(np.int64)
    plan_p = [0.40, 0.32, 0.20, 0.08]
    plans = np.array(PLANS + ["family"])
    if drifted:
        plan_idx = rng.choice(5, size=n_rows, p=[0.32, 0.28, 0.18, 0.07, 0.15])
    else:
        plan_idx = rng.choice(4, size=n_rows, p=plan_p)
    plan = plans[plan_idx]
    base_charge = np.array([25.0, 55.0, 90.0, 160.0, 75.0])[plan_idx]
    monthly = base_charge * rng.lognormal(0.0, 0.15, n_rows) * (1.15 if drifted else 1.0)
    total = monthly * np.maximum(tenure, 1) * rng.uniform(0.9, 1.05, n_rows)
    if flipped:
        # The same draws of total charges, paired with tenure in reverse rank order:
        # both marginals stay exactly as drawn, their correlation turns negative.
        by_tenure = np.argsort(tenure, kind="stable")
        flipped_total = np.empty_like(total)
        flipped_total[by_tenure] = np.sort(total)[::-1]
        total = flipped_total
    support = rng.poisson(2.2 if drifted else 1.2, n_rows)
    logins = rng.poisson(18, n_rows)
    session = rng.lognormal(2.5, 0.6, n_rows)
    session[rng.random(n_rows) < 0.001] = 5000.0  # stuck sessions
    last_login = rng.geometric(0.15, n_rows) - 1
    region_p = [0.2, 0.15, 0.15, 0.15, 0.1, 0.1, 0.1, 0.05]
    if drifted:
        region_p = [0.1, 0.1, 0.25, 0.2, 0.1, 0.1, 0.1, 0.05]
    region = np.array(REGIONS)[rng.choice(8, size=n_rows, p=region_p)]
    payment = np.array(PAYMENTS)[rng.choice(4, size=n_rows, p=[0.5, 0.25, 0.15, 0.1])]
    contract_idx = rng.choice(3, size=n_rows, p=[0.55, 0.25, 0.20])
    contract = np.array(CONTRACTS)[contract_idx]
    device_p = [0.35, 0.4, 0.2, 0.05] if not drifted else [0.25, 0.5, 0.2, 0.05]
    device = np.array(DEVICES)[rng.choice(4, size=n_rows, p=device_p)]
    partner = rng.random(n_rows) < 0.45
    paperless = rng.random(n_rows) < 0.6
    discount = np.round(rng.choice([0.0, 5.0, 10.0, 15.0, 20.0], size=n_rows, p=[0.6, 0.15, 0.12, 0.08, 0.05]), 1)
    products = 1 + rng.poisson(0.8, n_rows)
    late = rng.poisson(0.4, n_rows)
    nps = rng.integers(0, 11, n_rows)
    usage = rng.lognormal(1.5, 1.0, n_rows)

    logit = (
        -1.2
        + 0.45 * support
        - 0.035 * tenure
        + 0.012 * (monthly - 60)
        + 0.9 * (contract_idx == 0)
        - 0.6 * (contract_idx == 2)
        + 0.35 * late
        - 0.12 * (nps - 5)
        + 0.06 * last_login
        - 0.25 * partner
        - 0.02 * discount
        + 0.3 * (payment == "invoice")
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    churned = rng.random(n_rows) < p

    features = pl.DataFrame(
        {
            "customer_id": ids,
            "age": pl.Series(_with_nulls(rng, np.round(age, 1), 0.03), dtype=pl.Float64),
            "tenure_months": tenure,
            "monthly_charges": np.round(monthly, 2),
            "total_charges": pl.Series(_with_nulls(rng, np.round(total, 2), 0.02), dtype=pl.Float64),
            "num_support_calls": support.astype(np.int64),
            "num_logins_30d": logins.astype(np.int64),
            "avg_session_minutes": np.round(session, 2),
            "days_since_last_login": pl.Series(_with_nulls(rng, last_login.astype(np.int64), 0.05), dtype=pl.Int64),
            "plan": pl.Series(_with_nulls(rng, plan, 0.02), dtype=pl.String),
            "region": region.tolist(),
            "payment_method": payment.tolist(),
            "contract": contract.tolist(),
            "device_os": device.tolist(),
            "has_partner": partner,
            "paperless_billing": paperless,
            "discount_pct": discount,
            "num_products": products.astype(np.int64),
            "late_payments_12m": late.astype(np.int64),
            "nps_score": pl.Series(_with_nulls(rng, nps.astype(np.int64), 0.2), dtype=pl.Int64),
            "data_usage_gb": np.round(usage, 3),
        }
    )
    labels = pl.DataFrame({"customer_id": ids, "churned": churned})
    return features, labels


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="data/churn", help="output folder (default data/churn)")
    ap.add_argument("--end", default="2026-11-28", help="last day, YYYY-MM-DD (default 2026-11-28)")
    ap.add_argument("--days", type=int, default=60, help="number of daily partitions (default 60)")
    ap.add_argument("--rows", type=int, default=20000, help="rows per day (default 20000)")
    ap.add_argument("--customers", type=int, default=200000, help="customer population (default 200000)")
    ap.add_argument("--drift-days", type=int, default=14, help="last days that drift (default 14)")
    ap.add_argument("--label-lag", type=int, default=7, help="last days without labels yet (default 7)")
    ap.add_argument(
        "--flip-dates",
        default="2026-11-06,2026-11-07",
        help="comma-separated days whose tenure/total-charges correlation is flipped, marginals kept "
        "(default 2026-11-06,2026-11-07; empty: none)",
    )
    ap.add_argument(
        "--disjoint-days",
        action="store_true",
        help="give each day its own customer ids (day i: + i * customers), so that customer_id is unique across days",
    )
    ap.add_argument("--seed", type=int, default=20261128, help="random seed (default 20261128)")
    a = ap.parse_args(argv)
    if a.rows > a.customers:
        print("--rows cannot exceed --customers", file=sys.stderr)
        return 2
    end = dt.date.fromisoformat(a.end)
    flips = {dt.date.fromisoformat(d.strip()) for d in a.flip_dates.split(",") if d.strip()}
    for i in range(a.days):
        day = end - dt.timedelta(days=a.days - 1 - i)
        drifted = i >= a.days - a.drift_days
        offset = i * a.customers if a.disjoint_days else 0
        feats, labels = make_day(i, a.rows, a.customers, drifted, a.seed, flipped=day in flips, id_offset=offset)
        fdir = os.path.join(a.out, "features", f"ds={day.isoformat()}")
        os.makedirs(fdir, exist_ok=True)
        feats.write_parquet(os.path.join(fdir, "part-0.parquet"), compression="zstd")
        if i < a.days - a.label_lag:
            ldir = os.path.join(a.out, "labels", f"ds={day.isoformat()}")
            os.makedirs(ldir, exist_ok=True)
            labels.write_parquet(os.path.join(ldir, "part-0.parquet"), compression="zstd")
    print(f"wrote {a.days} days × {a.rows} rows to {a.out}/features (labels for {max(a.days - a.label_lag, 0)} days)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
