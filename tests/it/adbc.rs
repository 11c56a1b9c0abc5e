//! The ADBC source through real drivers (PyPI's adbc-driver-* wheels, installed by
//! `make adbc-drivers`): PostgreSQL against a real server started by the test,
//! compared with the native `postgres` source to the bit; SQLite on a file; the
//! Snowflake and BigQuery drivers load and fail clearly without their services
//! (unreachable from this machine).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::common::pg::{self, PgServer};
use crate::common::*;
use polars::prelude::*;

fn read_scores(p: &Project, table: &str) -> DataFrame {
    read_sorted(
        &p.path()
            .join(format!("output/{table}/ds={LAST_DAY}/part-00000.parquet")),
    )
}

/// A job `name` reading `sql` through `source_kind` (`postgres` or `adbc`) and `profile`.
fn job(p: &Project, name: &str, kind: &str, profile: &str, sql: &str, params: &str) -> PathBuf {
    p.write(&format!("sql/{name}.sql"), sql);
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  {kind}:\n    profile: {profile}\n    query: sql/{name}.sql\n{params}\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/{name}\ninference:\n  threads: 2\n  batch_size: 256\n",
            example_bundle().display()
        ),
    )
}

fn adbc_pg_profile(server: &PgServer, name: &str, password_env: &str) -> String {
    format!(
        "{name}:\n  adbc:\n    driver: postgresql\n    uri: postgresql://{}:${{{password_env}}}@127.0.0.1:{}/{}\n    fetch_rows: 700\n",
        pg::USER,
        server.port,
        server.db
    )
}

/// Bitwise equality of two frames, column by column (floats by their bits, so
/// NaN equals NaN and -0.0 differs from 0.0).
fn assert_bit_equal(a: &DataFrame, b: &DataFrame) {
    assert_eq!(a.get_column_names(), b.get_column_names());
    assert_eq!(a.height(), b.height());
    for (x, y) in a.columns().iter().zip(b.columns()) {
        assert_eq!(x.dtype(), y.dtype(), "column {}", x.name());
        match x.dtype() {
            DataType::Float32 => {
                let (u, v) = (x.f32().unwrap(), y.f32().unwrap());
                for (i, (p, q)) in u.iter().zip(v.iter()).enumerate() {
                    assert_eq!(
                        p.map(f32::to_bits),
                        q.map(f32::to_bits),
                        "column {} row {i}",
                        x.name()
                    );
                }
            }
            DataType::Float64 => {
                let (u, v) = (x.f64().unwrap(), y.f64().unwrap());
                for (i, (p, q)) in u.iter().zip(v.iter()).enumerate() {
                    assert_eq!(
                        p.map(f64::to_bits),
                        q.map(f64::to_bits),
                        "column {} row {i}",
                        x.name()
                    );
                }
            }
            _ => assert!(
                x.as_materialized_series()
                    .equals_missing(y.as_materialized_series()),
                "column {}",
                x.name()
            ),
        }
    }
}

#[test]
fn adbc_postgresql_scores_equal_the_native_source_to_the_bit() {
    let server = PgServer::start();
    let p = Project::new(2, 3000);
    server.load_parquet(
        "churn_features",
        &p.path().join("data/churn/features/*/*.parquet"),
        pg::CHURN_DDL,
    );
    std::fs::write(
        p.path().join("profiles.yaml"),
        format!(
            "{}{}",
            server.profiles_yaml("native", "WH_PASSWORD"),
            adbc_pg_profile(&server, "through_adbc", "WH_PASSWORD")
        ),
    )
    .unwrap();
    let env = [("WH_PASSWORD", pg::PASSWORD)];
    let sql = "-- the same SQL file for both sources\n\
               SELECT * FROM churn_features WHERE ds = {{ ds }} AND region <> {{ params.skip }}\n";
    let params = "    params:\n      skip: nowhere\n";
    let native = job(&p, "native", "postgres", "native", sql, params);
    let adbc = job(&p, "via_adbc", "adbc", "through_adbc", sql, params);
    let o = p.run_job(&native, &env);
    assert_exit(&o, 0, &[]);
    let o = p.run_job(&adbc, &env);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("3000 read, 3000 scored, 3000 written"),
        "{}",
        stdout(&o)
    );
    let (a, b) = (read_scores(&p, "native"), read_scores(&p, "via_adbc"));
    assert_eq!(a.height(), 3000);
    // Every column but the run's own identity.
    let per_run = ["run_id", "scored_at"];
    let keep = |f: &DataFrame| f.drop_many(per_run.iter().copied());
    assert!(
        a.column("churn_probability").is_ok(),
        "{:?}",
        a.get_column_names()
    );
    assert_bit_equal(&keep(&a), &keep(&b));

    // Lineage: the manifest names the profile and driver and hashes the query; no password.
    let m = read_json(
        p.path()
            .join(format!("output/via_adbc/ds={LAST_DAY}/_manifest.json")),
    );
    let source = m["source"].as_str().unwrap();
    assert!(
        source.contains("ADBC profile `through_adbc` (driver postgresql)"),
        "{source}"
    );
    assert_eq!(m["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    let all = format!(
        "{}{}{}",
        serde_json::to_string(&m).unwrap(),
        stdout(&o),
        stderr(&o)
    );
    assert!(!all.contains(pg::PASSWORD), "{all}");

    // Hostile parameter values are data, not SQL: nothing matches, nothing is dropped.
    for hostile in ["north' OR '1'='1", "x'; DROP TABLE churn_features; --"] {
        let j = job(
            &p,
            "hostile",
            "adbc",
            "through_adbc",
            "SELECT * FROM churn_features WHERE ds = {{ ds }} AND region = {{ params.region }}",
            &format!("    params:\n      region: {hostile:?}\n"),
        );
        assert_exit(&p.run_job(&j, &env), 3, &["read 0 rows"]);
    }
    assert_eq!(server.sql("SELECT count(*) FROM churn_features"), "6000");
    // Two bound dates: both days.
    let j = job(
        &p,
        "range",
        "adbc",
        "through_adbc",
        "SELECT * FROM churn_features WHERE ds BETWEEN {{ ds_add(-1) }} AND {{ ds }}",
        "",
    );
    // Two dates: a customer is a key once a day.
    let text = std::fs::read_to_string(&j)
        .unwrap()
        .replace("keys: [customer_id]", "keys: [customer_id, ds]");
    std::fs::write(&j, text).unwrap();
    let o = p.run_job(&j, &env);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("6000 read"), "{}", stdout(&o));

    // SQL errors: exit 2 with the server's message, the profile and the file.
    let j = job(
        &p,
        "broken",
        "adbc",
        "through_adbc",
        "SELECT * FROM no_such_table WHERE ds = {{ ds }}",
        "",
    );
    assert_exit(
        &p.run_job(&j, &env),
        2,
        &["no_such_table", "profile `through_adbc`", "sql/broken.sql"],
    );
    // validate checks the profile and the SQL's placeholders without connecting.
    let o = p.scorch_env(&["validate", "jobs/via_adbc.yaml"], &env);
    assert_exit(&o, 0, &[]);
    let j = job(
        &p,
        "raw_param",
        "adbc",
        "through_adbc",
        "SELECT * FROM churn_features WHERE ds = $1",
        "",
    );
    let o = p.scorch_env(&["validate", j.to_str().unwrap()], &env);
    assert_exit(&o, 2, &["sql/raw_param.sql", "params.NAME"]);

    // A wrong password: exit 2, neither password shown.
    let wrong = "wrong-password-sentinel-4e2";
    let o = p.run_job(&adbc, &[("WH_PASSWORD", wrong)]);
    assert_exit(
        &o,
        2,
        &["profile `through_adbc`", "password authentication failed"],
    );
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains(wrong) && !all.contains(pg::PASSWORD), "{all}");
    // Nothing listens: a runtime error, exit 1.
    let closed = free_port();
    std::fs::write(
        p.path().join("profiles.yaml"),
        adbc_pg_profile(&server, "through_adbc", "WH_PASSWORD")
            .replace(&format!(":{}/", server.port), &format!(":{closed}/")),
    )
    .unwrap();
    let o = p.run_job(&adbc, &env);
    assert_exit(&o, 1, &["profile `through_adbc`", "connect"]);
    assert!(!stderr(&o).contains(pg::PASSWORD));

    // A driver that is not installed, or a library that is no driver: exit 2 with the fix.
    std::fs::write(
        p.path().join("profiles.yaml"),
        "through_adbc:\n  adbc:\n    driver: duckdbx\n    uri: x\n",
    )
    .unwrap();
    assert_exit(
        &p.run_job(&adbc, &env),
        2,
        &[
            "ADBC driver `duckdbx` not found",
            "libadbc_driver_duckdbx.so",
        ],
    );
    let not_a_driver = p.write("lib/libadbc_driver_fake.so", "not an ELF file");
    std::fs::write(
        p.path().join("profiles.yaml"),
        format!(
            "through_adbc:\n  adbc:\n    driver: {}\n",
            not_a_driver.display()
        ),
    )
    .unwrap();
    assert_exit(
        &p.run_job(&adbc, &env),
        2,
        &["cannot load the ADBC driver", "make adbc-drivers"],
    );
    // An unknown database option is the driver's own complaint, exit 2.
    std::fs::write(
        p.path().join("profiles.yaml"),
        format!(
            "{}    options:\n      adbc.postgresql.no_such_option: \"1\"\n",
            adbc_pg_profile(&server, "through_adbc", "WH_PASSWORD")
        ),
    )
    .unwrap();
    assert_exit(
        &p.run_job(&adbc, &env),
        2,
        &["profile `through_adbc`", "no_such_option"],
    );
}

/// Reads `sql` from the server through both sources, for the columns `cols`.
fn both(
    server: &PgServer,
    sql: &str,
    params: &[(&str, &str)],
    cols: &[&str],
) -> (DataFrame, DataFrame) {
    let params: BTreeMap<String, String> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("q.sql");
    std::fs::write(&file, sql).unwrap();
    let profiles = dir.path().join("profiles.yaml");
    std::fs::write(
        &profiles,
        format!(
            "{}{}",
            server.profiles_yaml("native", "BOTH_PW"),
            adbc_pg_profile(server, "adbc", "BOTH_PW")
        ),
    )
    .unwrap();
    // SAFETY: tests in this binary that read the environment do not race on this name.
    unsafe { std::env::set_var("BOTH_PW", pg::PASSWORD) };
    let vars = scorch::spec::template::TemplateVars::date(
        chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
    );
    let mut red = scorch::spec::template::Redactor::default();
    let native = scorch::source::postgres::prepare(
        "native",
        &scorch::spec::profiles::postgres(&profiles, "native").unwrap(),
        &file,
        &params,
        &vars,
        &mut red,
    )
    .unwrap();
    let adbc = scorch::source::adbc::prepare(
        "adbc",
        &scorch::spec::profiles::adbc(&profiles, "adbc").unwrap(),
        dir.path(),
        &file,
        &params,
        &vars,
        &mut red,
    )
    .unwrap();
    let cols: Vec<String> = cols.iter().map(|s| s.to_string()).collect();
    (native.read(&cols).unwrap(), adbc.read(&cols).unwrap())
}

#[test]
fn every_type_and_extreme_value_reads_as_the_native_source_reads_it() {
    let server = PgServer::start();
    server.sql("CREATE TABLE t (k int4, i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, b bool, \
         s text, v varchar(10), c char(3), d date, ts timestamp, tz timestamptz, n numeric, bin bytea)",
    );
    // Deterministic pseudo-random rows over the classes that break converters:
    // extremes, ±inf, NaN, ±0, subnormals, nulls, empty and multi-byte strings,
    // dates and times around the epoch and far from it.
    let f8s = [
        "'NaN'",
        "'Infinity'",
        "'-Infinity'",
        "0",
        "'-0'",
        "5e-324",
        "1.7976931348623157e308",
        "-2.2250738585072014e-308",
        "0.1",
        "NULL",
    ];
    let f4s = [
        "'NaN'",
        "'Infinity'",
        "'-Infinity'",
        "'-0'",
        "1e-45",
        "3.4028235e38",
        "0.1",
        "NULL",
    ];
    let strs = [
        "''",
        "'a'",
        "'héllo ✓'",
        "'x''y'",
        "repeat('z', 5000)",
        "NULL",
    ];
    let dates = [
        "'1969-12-31'",
        "'1970-01-01'",
        "'0001-01-01'",
        "'9999-12-31'",
        "'2026-11-28'",
        "NULL",
    ];
    let tss = [
        "'1969-12-31 23:59:59.999999'",
        "'1970-01-01 00:00:00'",
        "'2026-11-28 13:14:15.123456'",
        "'0001-01-01 00:00:00'",
        "'9999-12-31 23:59:59.999999'",
        "NULL",
    ];
    let tzs = [
        "'2026-11-28 13:14:15.5+02'",
        "'1970-01-01 00:00:00+00'",
        "'1969-12-31 23:59:59.999999-05'",
        "'0001-01-01 00:00:00+00'",
        "NULL",
    ];
    let ints = ["NULL", "0", "-1", "1"];
    let mut rows = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut pick = |n: usize| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        (x % n as u64) as usize
    };
    for k in 0..400 {
        let i = |p: &mut dyn FnMut(usize) -> usize, min: &str, max: &str| {
            let v = [min, max, ints[p(4)], ints[p(4)]];
            v[p(4)].to_string()
        };
        rows.push(format!(
            "({k}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, NULL)",
            i(&mut pick, "-32768", "32767"),
            i(&mut pick, "-2147483648", "2147483647"),
            i(&mut pick, "-9223372036854775808", "9223372036854775807"),
            f4s[pick(f4s.len())],
            f8s[pick(f8s.len())],
            ["true", "false", "NULL"][pick(3)],
            strs[pick(strs.len())],
            ["'v'", "''", "NULL"][pick(3)],
            ["'ab'", "'abc'", "NULL"][pick(3)],
            dates[pick(dates.len())],
            tss[pick(tss.len())],
            tzs[pick(tzs.len())],
            ["12345.678", "'NaN'", "-0.0042", "NULL"][pick(4)],
        ));
    }
    server.sql(&format!("INSERT INTO t VALUES {}", rows.join(", ")));
    let cols = [
        "k", "i2", "i4", "i8", "f4", "f8", "b", "s", "v", "c", "d", "ts", "tz",
    ];
    let (native, adbc) = both(&server, "SELECT * FROM t ORDER BY k", &[], &cols);
    assert_eq!(native.height(), 400);
    assert_bit_equal(&native, &adbc);
    // With a parameter the driver reads through a cursor, 700 rows a fetch, not by
    // COPY: the same values again (1,500 rows: two full fetches and a short one).
    server.sql(
        "INSERT INTO t SELECT k + 400, i2, i4, i8, f4, f8, b, s, v, c, d, ts, tz, n, bin FROM t, \
         generate_series(1, 3) AS g(m) WHERE true ORDER BY k LIMIT 1100",
    );
    let (native, adbc) = both(
        &server,
        "SELECT * FROM t WHERE d IS NULL OR d <> {{ ds }} OR k >= {{ params.min }}::int4 ORDER BY k",
        &[("min", "0")],
        &cols,
    );
    assert_eq!(native.height(), 1500);
    assert_bit_equal(&native, &adbc);

    // numeric arrives as text through the PostgreSQL driver; cast it to read a number.
    let (native, adbc) = both(
        &server,
        "SELECT k, n::float8 AS n FROM t ORDER BY k",
        &[],
        &["k", "n"],
    );
    assert_bit_equal(&native, &adbc);
    // An unmapped type is refused naming the column.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("q.sql");
    std::fs::write(&file, "SELECT k, bin FROM t").unwrap();
    let profiles = dir.path().join("profiles.yaml");
    std::fs::write(&profiles, adbc_pg_profile(&server, "adbc", "BOTH_PW")).unwrap();
    let q = scorch::source::adbc::prepare(
        "adbc",
        &scorch::spec::profiles::adbc(&profiles, "adbc").unwrap(),
        dir.path(),
        &file,
        &BTreeMap::new(),
        &scorch::spec::template::TemplateVars::date(
            chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        ),
        &mut scorch::spec::template::Redactor::default(),
    )
    .unwrap();
    let e = q.schema().unwrap_err();
    assert_eq!(e.exit_code(), scorch::ExitCode::Config);
    assert!(e.to_string().contains("column `bin`"), "{e}");
}

/// Writes the generated churn features into a SQLite file, dates as ISO text.
fn sqlite_db(p: &Project) -> PathBuf {
    let db = p.path().join("warehouse.sqlite");
    let o = run_python(&[
        "-c",
        &format!(
            "import sqlite3, polars as pl\n\
             df = pl.read_parquet({:?}, hive_partitioning=True).with_columns(pl.col('ds').cast(pl.Utf8))\n\
             con = sqlite3.connect({:?})\n\
             cols = df.columns\n\
             con.execute('CREATE TABLE churn_features (' + ', '.join(cols) + ')')\n\
             con.executemany('INSERT INTO churn_features VALUES (' + ', '.join('?' * len(cols)) + ')', df.rows())\n\
             con.commit()\n",
            p.path()
                .join("data/churn/features/*/*.parquet")
                .to_str()
                .unwrap(),
            db.to_str().unwrap()
        ),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    db
}

#[test]
fn a_sqlite_file_scores_through_its_driver() {
    let p = Project::new(2, 800);
    let db = sqlite_db(&p);
    std::fs::write(
        p.path().join("profiles.yaml"),
        format!(
            "local_sqlite:\n  adbc:\n    driver: sqlite\n    uri: file:{}\n",
            db.display()
        ),
    )
    .unwrap();
    let j = job(
        &p,
        "from_sqlite",
        "adbc",
        "local_sqlite",
        "SELECT * FROM churn_features WHERE ds = {{ ds }} ORDER BY customer_id",
        "",
    );
    let o = p.run_job(&j, &[]);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("800 read, 800 scored, 800 written"),
        "{}",
        stdout(&o)
    );
    let parquet = p.standard_job("from_parquet", &example_bundle());
    assert_exit(&p.run_job(&parquet, &[]), 0, &[]);
    let (a, b) = (
        read_scores(&p, "from_sqlite"),
        read_scores(&p, "from_parquet"),
    );
    assert_scores_close(&a, &b, 1e-6);
    // An empty SQL file: exit 2 naming it, before any connection.
    let j = job(&p, "empty", "adbc", "local_sqlite", "  \n", "");
    assert_exit(&p.run_job(&j, &[]), 2, &["sql/empty.sql", "empty"]);
    // `?` written by hand is refused: parameters come from placeholders.
    let j = job(
        &p,
        "qmark",
        "adbc",
        "local_sqlite",
        "SELECT * FROM churn_features WHERE ds = ?",
        "",
    );
    assert_exit(&p.run_job(&j, &[]), 2, &["sql/qmark.sql", "`?` parameters"]);
}

fn driver_fails_without_its_service(name: &str, profile: &str, expect: &[&str]) {
    let p = Project::new(1, 100);
    std::fs::write(p.path().join("profiles.yaml"), profile).unwrap();
    let j = job(
        &p,
        name,
        "adbc",
        "cloud",
        "SELECT * FROM churn_features WHERE ds = {{ ds }}",
        "",
    );
    let o = p.scorch_env(
        &["validate", j.to_str().unwrap()],
        &[("CLOUD_SECRET", "s3cr3t-value-77")],
    );
    assert_exit(&o, 0, &[]);
    let o = p.run_job(&j, &[("CLOUD_SECRET", "s3cr3t-value-77")]);
    // The library loaded (its own error, not a load failure), and the run failed cleanly.
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains("cannot load the ADBC driver"), "{all}");
    assert!(!all.contains("s3cr3t-value-77"), "{all}");
    assert!(
        matches!(o.status.code(), Some(1) | Some(2)),
        "exit {:?}: {all}",
        o.status.code()
    );
    for e in expect {
        assert!(all.contains(e), "missing {e:?} in {all}");
    }
    assert!(
        !p.path()
            .join(format!("output/{name}/ds={LAST_DAY}"))
            .exists()
    );
}

#[test]
fn snowflake_and_bigquery_drivers_load_and_fail_clearly_without_their_services() {
    let closed = free_port();
    driver_fails_without_its_service(
        "snowflake",
        &format!(
            "cloud:\n  adbc:\n    driver: snowflake\n    username: scorch\n    password: ${{CLOUD_SECRET}}\n    options:\n      \
             adbc.snowflake.sql.account: scorch-test\n      adbc.snowflake.sql.uri.host: 127.0.0.1\n      \
             adbc.snowflake.sql.uri.port: \"{closed}\"\n      adbc.snowflake.sql.uri.protocol: http\n      \
             adbc.snowflake.sql.client_option.login_timeout: 5s\n"
        ),
        // The driver's own login request, refused by the closed port.
        &[
            "profile `cloud` (driver snowflake)",
            "login-request",
            "connection refused",
        ],
    );
    driver_fails_without_its_service(
        "bigquery",
        "cloud:\n  adbc:\n    driver: bigquery\n    options:\n      adbc.bigquery.sql.project_id: scorch-test\n      \
         adbc.bigquery.sql.auth_type: adbc.bigquery.sql.auth_type.json_credential_string\n      \
         adbc.bigquery.sql.auth_credentials: ${CLOUD_SECRET}\n",
        // The driver's own client, refusing credentials that are not a JSON key.
        &["profile `cloud` (driver bigquery)", "[BigQuery]"],
    );
}
