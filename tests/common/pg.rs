//! A throwaway PostgreSQL server for tests: `initdb` into a temp folder, started
//! with `pg_ctl` on a free loopback port, stopped and deleted on drop. Password
//! authentication (scram-sha-256) over TCP, so wrong passwords can be tested.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub const USER: &str = "scorch";
pub const PASSWORD: &str = "pg-test-password-5e1d";
pub const DB: &str = "warehouse";

pub struct PgServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    bin: PathBuf,
    as_postgres: bool,
}

fn find_bin() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").exists() {
            return p;
        }
    }
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| rd.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    candidates
        .into_iter()
        .rev()
        .find(|p| p.join("initdb").exists())
        .expect("PostgreSQL server binaries not found: `make test` installs them (apt-get install -y postgresql)")
}

impl PgServer {
    pub fn start() -> Self {
        let bin = find_bin();
        let dir = tempfile::Builder::new()
            .prefix("scorch-pg-")
            .tempdir()
            .unwrap();
        // initdb refuses to run as root: run the server as the `postgres` user then.
        let as_postgres = unsafe { libc::geteuid() } == 0;
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success());
        }
        let s = PgServer {
            dir,
            port: super::free_port(),
            bin,
            as_postgres,
        };
        let pwfile = s.dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if as_postgres {
            Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&pwfile)
                .status()
                .unwrap();
        }
        let data = s.data();
        s.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                USER,
                "--pwfile",
                pwfile.to_str().unwrap(),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            s.port,
            s.dir.path().display()
        );
        s.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &opts,
                "-l",
                s.dir.path().join("log").to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        s.psql("postgres", &format!("CREATE DATABASE {DB}"));
        s
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let out = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .current_dir(self.dir.path())
                .output()
                .unwrap()
        } else {
            Command::new(&exe).args(args).output().unwrap()
        };
        assert!(
            out.status.success(),
            "{tool} failed: {}{}\nlog: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Runs SQL with psql over TCP as the test user.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let psql = if self.bin.join("psql").exists() {
            self.bin.join("psql")
        } else {
            PathBuf::from("psql")
        };
        let out = Command::new(psql)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                USER,
                "-d",
                db,
            ])
            .args(["-v", "ON_ERROR_STOP=1", "-qAtX", "-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A profiles.yaml text for this server, the password taken from `$password_env`.
    pub fn profiles_yaml(&self, name: &str, password_env: &str) -> String {
        format!(
            "{name}:\n  postgres:\n    host: 127.0.0.1\n    port: {}\n    user: {USER}\n    password: ${{{password_env}}}\n    dbname: {DB}\n    sslmode: disable\n    fetch_rows: 1000\n",
            self.port
        )
    }

    /// Loads Parquet files into a new table via CSV and `\copy`.
    pub fn load_parquet(&self, table: &str, parquet_glob: &Path, ddl: &str) {
        let csv = self.dir.path().join(format!("{table}.csv"));
        let o = super::run_python(&[
            "-c",
            &format!(
                "import polars as pl; pl.read_parquet({:?}, hive_partitioning=True).write_csv({:?})",
                parquet_glob.to_str().unwrap(),
                csv.to_str().unwrap()
            ),
        ]);
        assert!(o.status.success(), "{}", super::stderr(&o));
        self.psql(DB, &format!("CREATE TABLE {table} ({ddl})"));
        self.psql(
            DB,
            &format!("\\copy {table} FROM '{}' CSV HEADER", csv.display()),
        );
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let args = [
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

/// DDL of the example churn feature table, matching make_churn_data.py's schema.
pub const CHURN_DDL: &str = "customer_id bigint, age float8, tenure_months bigint, monthly_charges float8, \
    total_charges float8, num_support_calls bigint, num_logins_30d bigint, avg_session_minutes float8, \
    days_since_last_login bigint, plan text, region text, payment_method text, contract text, device_os text, \
    has_partner boolean, paperless_billing boolean, discount_pct float8, num_products bigint, \
    late_payments_12m bigint, nps_score bigint, data_usage_gb float8, ds date";
