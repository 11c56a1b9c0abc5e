//! The PostgreSQL source against a real server started by the test (initdb +
//! pg_ctl on a free loopback port), never a mock.

use std::collections::BTreeMap;

use crate::common::pg::{self, PgServer};
use crate::common::*;
use polars::prelude::*;

fn read_scores(p: &Project, table: &str, ds: &str) -> DataFrame {
    read_sorted(
        &p.path()
            .join(format!("output/{table}/ds={ds}/part-00000.parquet")),
    )
}

fn pg_job(p: &Project, name: &str, sql: &str, params: &str) -> std::path::PathBuf {
    p.write(&format!("sql/{name}.sql"), sql);
    p.job(
        name,
        &format!(
            "name: {name}\nsource:\n  postgres:\n    profile: warehouse\n    query: sql/{name}.sql\n{params}\
             keys: [customer_id]\nmodel: {}\noutput:\n  path: output/{name}\n",
            example_bundle().display()
        ),
    )
}

#[test]
fn postgres_job_scores_like_the_parquet_job_and_binds_parameters() {
    let server = PgServer::start();
    let p = Project::new(2, 1200);
    server.load_parquet(
        "churn_features",
        &p.path().join("data/churn/features/*/*.parquet"),
        pg::CHURN_DDL,
    );
    std::fs::write(
        p.path().join("profiles.yaml"),
        server.profiles_yaml("warehouse", "WH_PASSWORD"),
    )
    .unwrap();
    let env = [("WH_PASSWORD", pg::PASSWORD)];

    let job = pg_job(
        &p,
        "from_pg",
        "-- the run date arrives as a bound DATE parameter\nSELECT * FROM churn_features WHERE ds = {{ ds }};\n",
        "",
    );
    let o = p.run_job(&job, &env);
    assert_exit(&o, 0, &[]);
    assert!(
        stdout(&o).contains("1200 read, 1200 scored, 1200 written"),
        "{}",
        stdout(&o)
    );
    let parquet_job = p.standard_job("from_parquet", &example_bundle());
    assert_exit(&p.run_job(&parquet_job, &[]), 0, &[]);
    let (a, b) = (
        read_scores(&p, "from_pg", LAST_DAY),
        read_scores(&p, "from_parquet", LAST_DAY),
    );
    // Same scores. Not always to the bit: the PostgreSQL source delivers rows in
    // other chunk sizes, so a row can sit in a batch of another shape, and
    // libtorch's CPU kernels round the last bit differently per shape (measured
    // here: up to 1.2e-7 between batch sizes 4096 and 777 on the same rows).
    assert_scores_close(&a, &b, 1e-6);
    let m: serde_json::Value =
        read_json(p.path().join("output/from_pg/ds=2026-11-28/_manifest.json"));
    assert!(
        m["source"]
            .as_str()
            .unwrap()
            .contains("profile `warehouse`")
    );
    assert_eq!(m["inputs"][0]["sha256"].as_str().unwrap().len(), 64);
    let text = serde_json::to_string(&m).unwrap();
    assert!(!text.contains(pg::PASSWORD));

    // Hostile parameter values are data, not SQL: no rows match, nothing is dropped.
    // A query that matches nothing is refused (exit 3) unless the job allows empty
    // output, as this one does.
    for hostile in ["north' OR '1'='1", "x'; DROP TABLE churn_features; --"] {
        let job = pg_job(
            &p,
            "hostile",
            "SELECT * FROM churn_features WHERE ds = {{ ds }} AND region = {{ params.region }}",
            &format!("    params:\n      region: {hostile:?}\n"),
        );
        assert_exit(&p.run_job(&job, &env), 3, &["read 0 rows"]);
        let allowed = std::fs::read_to_string(&job).unwrap().replace(
            "  path: output/hostile\n",
            "  path: output/hostile\n  allow_empty: true\n",
        );
        std::fs::write(&job, allowed).unwrap();
        let o = p.run_job(&job, &env);
        assert_exit(&o, 0, &[]);
        assert!(
            stdout(&o).contains("0 read, 0 scored, 0 written"),
            "{}",
            stdout(&o)
        );
    }
    assert_eq!(server.sql("SELECT count(*) FROM churn_features"), "2400");
    // The same query with an honest value finds rows.
    let job = pg_job(
        &p,
        "honest",
        "SELECT * FROM churn_features WHERE ds = {{ ds }} AND region = {{ params.region }}",
        "    params:\n      region: north\n",
    );
    let o = p.run_job(&job, &env);
    assert_exit(&o, 0, &[]);
    assert!(!stdout(&o).contains(" 0 read"), "{}", stdout(&o));

    // A date range as two bound dates: both generated days.
    let job = pg_job(
        &p,
        "range",
        "SELECT * FROM churn_features WHERE ds BETWEEN {{ ds_add(-1) }} AND {{ ds }}",
        "",
    );
    // Two dates: a customer is a key once a day.
    let text = std::fs::read_to_string(&job)
        .unwrap()
        .replace("keys: [customer_id]", "keys: [customer_id, ds]");
    std::fs::write(&job, text).unwrap();
    let o = p.run_job(&job, &env);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("2400 read"), "{}", stdout(&o));

    // SQL errors: exit 2, the server's message, the profile and the file.
    let job = pg_job(
        &p,
        "broken",
        "SELECT * FROM no_such_table WHERE ds = {{ ds }}",
        "",
    );
    let o = p.run_job(&job, &env);
    assert_exit(
        &o,
        2,
        &[
            "no_such_table",
            "does not exist",
            "profile `warehouse`",
            "sql/broken.sql",
        ],
    );
    // A quoted placeholder is refused before connecting.
    let job = pg_job(
        &p,
        "quoted",
        "SELECT * FROM churn_features WHERE ds = '{{ ds }}'",
        "",
    );
    let o = p.run_job(&job, &env);
    assert_exit(&o, 2, &["sql/quoted.sql", "string literal"]);
    // validate checks the profile and the SQL without running it.
    let o = p.scorch_env(&["validate", "jobs/from_pg.yaml", "jobs/quoted.yaml"], &env);
    assert_exit(&o, 2, &["string literal"]);
    assert!(
        stdout(&o).contains("ok    jobs/from_pg.yaml"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn every_mapped_type_round_trips_with_nulls() {
    let server = PgServer::start();
    server.sql(
        "CREATE TABLE t (i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, b bool, \
         s text, v varchar(10), c char(3), d date, ts timestamp, tz timestamptz, j json)",
    );
    server.sql("INSERT INTO t VALUES \
         (-32768, 2147483647, -9223372036854775808, 1.5, 2.25, 12345.678, true, 'héllo', 'v', 'ab', \
          '2026-11-28', '2026-11-28 13:14:15.123456', '2026-11-28 13:14:15.5+02', '{}'), \
         (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), \
         (1, 2, 3, 'NaN', '-Infinity', -0.0042, false, '', 'x', 'x', '1969-12-31', '1970-01-01 00:00:00', \
          '1970-01-01 00:00:00+00', 'null')",
    );
    let dir = tempfile::tempdir().unwrap();
    let sql = dir.path().join("q.sql");
    std::fs::write(&sql, "SELECT * FROM t ORDER BY i4 NULLS LAST").unwrap();
    let profiles = dir.path().join("profiles.yaml");
    std::fs::write(&profiles, server.profiles_yaml("wh", "TYPES_PW")).unwrap();
    // SAFETY: tests in this binary that read the environment do not race on this name.
    unsafe { std::env::set_var("TYPES_PW", pg::PASSWORD) };
    let profile = scorch::spec::profiles::postgres(&profiles, "wh").unwrap();
    let vars = scorch::spec::template::TemplateVars::date(
        chrono::NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
    );
    let mut red = scorch::spec::template::Redactor::default();
    let q =
        scorch::source::postgres::prepare("wh", &profile, &sql, &BTreeMap::new(), &vars, &mut red)
            .unwrap();

    // `json` is not mapped: a clear error naming the column.
    let e = q.schema().unwrap_err();
    assert_eq!(e.exit_code(), scorch::ExitCode::Config);
    assert!(
        e.to_string()
            .contains("column `j` has PostgreSQL type json"),
        "{e}"
    );

    let cols: Vec<String> = [
        "i2", "i4", "i8", "f4", "f8", "n", "b", "s", "v", "c", "d", "ts", "tz",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let df = q.read(&cols).unwrap();
    let dtypes: Vec<String> = df.dtypes().iter().map(|d| d.to_string()).collect();
    assert_eq!(
        dtypes,
        [
            "i16",
            "i32",
            "i64",
            "f32",
            "f64",
            "f64",
            "bool",
            "str",
            "str",
            "str",
            "date",
            "datetime[μs]",
            "datetime[μs, UTC]"
        ]
    );
    assert_eq!(df.height(), 3);
    // Row order: i4 = 2, 2147483647, NULL.
    let row = |i: usize| df.get_row(i).unwrap().0;
    let r0 = row(0);
    assert_eq!(r0[0], AnyValue::Int16(1));
    assert!(matches!(r0[3], AnyValue::Float32(x) if x.is_nan()));
    assert_eq!(r0[4], AnyValue::Float64(f64::NEG_INFINITY));
    assert_eq!(r0[5], AnyValue::Float64(-0.0042));
    assert_eq!(r0[6], AnyValue::Boolean(false));
    assert_eq!(r0[7], AnyValue::String(""));
    assert_eq!(r0[10], AnyValue::Date(-1));
    let r1 = row(1);
    assert_eq!(r1[0], AnyValue::Int16(-32768));
    assert_eq!(r1[1], AnyValue::Int32(2147483647));
    assert_eq!(r1[2], AnyValue::Int64(i64::MIN));
    assert_eq!(r1[3], AnyValue::Float32(1.5));
    assert_eq!(r1[4], AnyValue::Float64(2.25));
    assert_eq!(r1[5], AnyValue::Float64(12345.678));
    assert_eq!(r1[6], AnyValue::Boolean(true));
    assert_eq!(r1[7], AnyValue::String("héllo"));
    assert_eq!(r1[8], AnyValue::String("v"));
    assert_eq!(r1[9], AnyValue::String("ab "));
    assert_eq!(r1[10], AnyValue::Date(20785));
    let ts = df
        .column("ts")
        .unwrap()
        .datetime()
        .unwrap()
        .phys
        .get(1)
        .unwrap();
    assert_eq!(ts, 1_795_871_655_123_456);
    let tz = df
        .column("tz")
        .unwrap()
        .datetime()
        .unwrap()
        .phys
        .get(1)
        .unwrap();
    assert_eq!(tz, 1_795_864_455_500_000);
    for c in df.columns() {
        assert!(c.get(2).unwrap().is_null(), "{} should be null", c.name());
    }
}

#[test]
fn connection_failures_have_documented_codes_and_hide_passwords() {
    let server = PgServer::start();
    let p = Project::new(1, 100);
    let job = pg_job(&p, "conn", "SELECT * FROM t WHERE ds = {{ ds }}", "");
    std::fs::write(
        p.path().join("profiles.yaml"),
        server.profiles_yaml("warehouse", "WH_PASSWORD"),
    )
    .unwrap();

    // Wrong password: configuration error, exit 2; neither password is printed.
    let wrong = "wrong-password-sentinel-91c";
    let o = p.run_job(&job, &[("WH_PASSWORD", wrong)]);
    assert_exit(
        &o,
        2,
        &[
            "profile `warehouse`",
            "sql/conn.sql",
            "password authentication failed",
            "28P01",
        ],
    );
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(!all.contains(wrong) && !all.contains(pg::PASSWORD), "{all}");
    let runs = p.path().join("output/conn/_runs");
    for e in std::fs::read_dir(&runs).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(!text.contains(wrong), "password in manifest: {text}");
    }

    // Unset password variable: exit 2 naming it.
    let o = p.run_job(&job, &[]);
    assert_exit(&o, 2, &["WH_PASSWORD", "not set"]);

    // Unreachable host (nothing listens on the port): runtime error, exit 1.
    let closed = free_port();
    std::fs::write(
        p.path().join("profiles.yaml"),
        format!(
            "warehouse:\n  postgres:\n    url: postgres://scorch:${{WH_PASSWORD}}@127.0.0.1:{closed}/warehouse\n    sslmode: disable\n    connect_timeout_s: 3\n"
        ),
    )
    .unwrap();
    let o = p.run_job(&job, &[("WH_PASSWORD", wrong)]);
    assert_exit(
        &o,
        1,
        &[
            "profile `warehouse`",
            &format!("127.0.0.1:{closed}"),
            "connect",
        ],
    );
    assert!(!stderr(&o).contains(wrong));

    // sslmode: require against a server without TLS fails clearly.
    std::fs::write(
        p.path().join("profiles.yaml"),
        server
            .profiles_yaml("warehouse", "WH_PASSWORD")
            .replace("sslmode: disable", "sslmode: require"),
    )
    .unwrap();
    let o = p.run_job(&job, &[("WH_PASSWORD", pg::PASSWORD)]);
    assert_exit(&o, 1, &["profile `warehouse`", "TLS"]);

    // Unknown profile: exit 2 listing the known ones.
    let o = p.scorch_env(
        &[
            "run",
            job.to_str().unwrap(),
            "--date",
            LAST_DAY,
            "--profiles",
            "/nonexistent/profiles.yaml",
        ],
        &[],
    );
    assert_exit(&o, 2, &["profiles file not found"]);
}
