//! The model registry: registering refuses overwrites (also when two processes race),
//! aliases move atomically with an audit trail, rollback restores the previous
//! target, and jobs resolve `name@alias`.

use crate::common::*;

/// A copy of the example bundle with another version in its bundle.yaml.
fn bundle_version(p: &Project, version: &str) -> std::path::PathBuf {
    let dir = p.path().join(format!("incoming/churn-{version}"));
    copy_dir(&example_bundle(), &dir);
    let yaml = std::fs::read_to_string(dir.join("bundle.yaml")).unwrap();
    std::fs::write(
        dir.join("bundle.yaml"),
        yaml.replace("version: \"1.0.0\"", &format!("version: \"{version}\"")),
    )
    .unwrap();
    dir
}

fn manifest_version(p: &Project, table: &str) -> String {
    let m: serde_json::Value = read_json(
        p.path()
            .join(format!("output/{table}/ds={LAST_DAY}/_manifest.json")),
    );
    m["model"]["version"].as_str().unwrap().to_string()
}

#[test]
fn register_promote_rollback_and_jobs_resolve_aliases() {
    let p = Project::new(1, 200);
    let reg = ["--registry", "registry"];
    let v1 = bundle_version(&p, "1.0.0");
    let v2 = bundle_version(&p, "1.1.0");
    for b in [&v1, &v2] {
        let o = p.scorch(&[&["model", "register", b.to_str().unwrap()][..], &reg].concat());
        assert_exit(&o, 0, &[]);
    }
    // A version is immutable.
    let again = p.scorch(&[&["model", "register", v1.to_str().unwrap()][..], &reg].concat());
    assert_exit(
        &again,
        2,
        &["churn@1.0.0 is already registered", "immutable"],
    );
    // Promote 1.0.0, then 1.1.0; a job naming the alias scores with it.
    for v in ["1.0.0", "1.1.0"] {
        let model = format!("churn@{v}");
        let o = p.scorch(
            &[
                &[
                    "model", "promote", &model, "--alias", "champion", "--why", "test",
                ][..],
                &reg,
            ]
            .concat(),
        );
        assert_exit(&o, 0, &[]);
    }
    let job = p.job(
        "by_alias",
        "name: by_alias\nsource:\n  parquet:\n    path: data/churn/features/ds={{ ds }}/*.parquet\n\
         keys: [customer_id]\nmodel: churn@champion\noutput:\n  path: output/by_alias\n",
    );
    let env = [("SCORCH_REGISTRY", "registry")];
    assert_exit(&p.run_job(&job, &env), 0, &[]);
    assert_eq!(manifest_version(&p, "by_alias"), "1.1.0");
    // Rollback: champion names 1.0.0 again, and the next run uses it.
    let o = p.scorch(
        &[
            &["model", "rollback", "churn", "--alias", "champion"][..],
            &reg,
        ]
        .concat(),
    );
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("1.1.0 -> 1.0.0"), "{}", stdout(&o));
    assert_exit(&p.run_job(&job, &env), 0, &[]);
    assert_eq!(manifest_version(&p, "by_alias"), "1.0.0");
    // The audit log has every change, in order, with from -> to.
    let audit = std::fs::read_to_string(p.path().join("registry/churn/_audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<(&str, Option<&str>, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap(),
                l["from"].as_str(),
                l["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("register", None, "1.0.0"),
            ("register", None, "1.1.0"),
            ("promote", None, "1.0.0"),
            ("promote", Some("1.0.0"), "1.1.0"),
            ("rollback", Some("1.1.0"), "1.0.0"),
        ]
    );
    // Unknown versions and aliases are clear errors; so is promoting a missing version.
    let bad = p.job(
        "bad_alias",
        "name: bad_alias\nsource:\n  parquet:\n    path: data/churn/features/ds={{ ds }}/*.parquet\n\
         keys: [customer_id]\nmodel: churn@staging\noutput:\n  path: output/bad_alias\n",
    );
    assert_exit(
        &p.run_job(&bad, &env),
        4,
        &[
            "churn@staging",
            "neither a version (1.0.0, 1.1.0) nor an alias",
        ],
    );
    let o = p.scorch(
        &[
            &["model", "promote", "churn@9.9.9", "--alias", "champion"][..],
            &reg,
        ]
        .concat(),
    );
    assert_exit(&o, 2, &["churn@9.9.9 is not registered"]);
    let listed = p.scorch(&[&["model", "list"][..], &reg].concat());
    assert!(
        stdout(&listed).contains("churn: versions 1.0.0, 1.1.0; aliases champion -> 1.0.0"),
        "{}",
        stdout(&listed)
    );
}

#[test]
fn two_registrations_of_one_version_cannot_both_succeed() {
    let p = Project::new(1, 10);
    let b = bundle_version(&p, "2.0.0");
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (dir, b) = (p.path().to_path_buf(), b.clone());
            std::thread::spawn(move || {
                std::process::Command::new(bin())
                    .current_dir(dir)
                    .args([
                        "model",
                        "register",
                        b.to_str().unwrap(),
                        "--registry",
                        "registry",
                    ])
                    .output()
                    .unwrap()
                    .status
                    .code()
            })
        })
        .collect();
    let codes: Vec<Option<i32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert!(
        codes.iter().all(|c| matches!(c, Some(0) | Some(2))),
        "{codes:?}"
    );
    // The registered copy is whole, and no temporary folder is left behind.
    let dir = p.path().join("registry/churn");
    assert!(dir.join("2.0.0/model.pt").is_file());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_registry_on_s3_registers_promotes_rolls_back_and_serves_jobs() {
    let p = Project::new(1, 200);
    let s3 = s3::S3Server::start();
    let bucket = s3.bucket("reg");
    let endpoint = format!("http://127.0.0.1:{}", s3.port);
    let cache = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_ENDPOINT", endpoint.as_str()),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", s3::ACCESS_KEY),
        ("AWS_SECRET_ACCESS_KEY", s3::SECRET_KEY),
        ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false"),
        ("SCORCH_CACHE", cache.path().to_str().unwrap()),
        ("SCORCH_REGISTRY", "s3://reg/models"),
    ];
    let scorch = |args: &[&str]| p.scorch_env(args, &env);
    let v1 = bundle_version(&p, "1.0.0");
    let v2 = bundle_version(&p, "1.1.0");
    for b in [&v1, &v2] {
        assert_exit(&scorch(&["model", "register", b.to_str().unwrap()]), 0, &[]);
    }
    // Every file went over the S3 protocol into the bucket; bundle.yaml is there.
    assert!(bucket.join("models/churn/1.1.0/model.pt").is_file());
    assert!(bucket.join("models/churn/1.1.0/bundle.yaml").is_file());
    // Immutable: a second registration of a version is refused.
    assert_exit(
        &scorch(&["model", "register", v1.to_str().unwrap()]),
        2,
        &[
            "churn@1.0.0 is already registered in s3://reg/models",
            "immutable",
        ],
    );
    for v in ["churn@1.0.0", "churn@1.1.0"] {
        assert_exit(
            &scorch(&["model", "promote", v, "--alias", "champion"]),
            0,
            &[],
        );
    }
    let job = p.job(
        "by_alias",
        "name: by_alias\nsource:\n  parquet:\n    path: data/churn/features/ds={{ ds }}/*.parquet\n\
         keys: [customer_id]\nmodel: churn@champion\noutput:\n  path: output/by_alias\n",
    );
    assert_exit(&p.run_job(&job, &env), 0, &[]);
    assert_eq!(manifest_version(&p, "by_alias"), "1.1.0");
    // The version was downloaded once into the cache, and is verified at every open.
    let cached: Vec<_> = files_under(cache.path())
        .into_iter()
        .filter(|f| f.ends_with("churn/1.1.0/model.pt"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let o = scorch(&["model", "rollback", "churn", "--alias", "champion"]);
    assert_exit(&o, 0, &[]);
    assert!(stdout(&o).contains("1.1.0 -> 1.0.0"), "{}", stdout(&o));
    assert_exit(&p.run_job(&job, &env), 0, &[]);
    assert_eq!(manifest_version(&p, "by_alias"), "1.0.0");
    // The audit log (appended with conditional PUTs) has every change in order.
    let audit = std::fs::read_to_string(bucket.join("models/churn/_audit.jsonl")).unwrap();
    let actions: Vec<String> = audit
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {}",
                v["action"].as_str().unwrap(),
                v["to"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            "register 1.0.0",
            "register 1.1.0",
            "promote 1.0.0",
            "promote 1.1.0",
            "rollback 1.0.0"
        ]
    );
    let listed = scorch(&["model", "list"]);
    assert!(
        stdout(&listed).contains("churn: versions 1.0.0, 1.1.0; aliases champion -> 1.0.0"),
        "{}{}",
        stdout(&listed),
        stderr(&listed)
    );
}

#[test]
fn promote_verifies_every_hash_and_the_audit_names_who_acted() {
    let p = Project::new(1, 100);
    let reg = ["--registry", "registry"];
    let v1 = bundle_version(&p, "1.0.0");
    let o = p.scorch(
        &[
            &["model", "register", v1.to_str().unwrap(), "--by", "alice"][..],
            &reg,
        ]
        .concat(),
    );
    assert_exit(&o, 0, &[]);
    // Without --by, SCORCH_USER, USER or LOGNAME: the OS user, never "unknown".
    let o = std::process::Command::new(bin())
        .args([
            "model",
            "promote",
            "churn@1.0.0",
            "--alias",
            "champion",
            "--registry",
            "registry",
        ])
        .current_dir(p.path())
        .env_remove("SCORCH_USER")
        .env_remove("USER")
        .env_remove("LOGNAME")
        .output()
        .unwrap();
    assert_exit(&o, 0, &[]);
    let audit = std::fs::read_to_string(p.path().join("registry/churn/_audit.jsonl")).unwrap();
    let by: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["by"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(by[0], "alice");
    assert!(!by[1].is_empty() && by[1] != "unknown", "{by:?}");
    // `scorch profile` refuses a registered version, and changes nothing in it.
    let yaml = p.path().join("registry/churn/1.0.0/bundle.yaml");
    let before = std::fs::read(&yaml).unwrap();
    let o = p.scorch(&[
        "profile",
        "--bundle",
        "registry/churn/1.0.0",
        "--data",
        "data/churn/features/*/*.parquet",
    ]);
    assert_exit(&o, 2, &["registered model version", "immutable"]);
    assert_eq!(std::fs::read(&yaml).unwrap(), before);
    // The model file changed after registration: promote refuses (exit 4), the alias stays.
    let model = p.path().join("registry/churn/1.0.0/model.pt");
    let mut bytes = std::fs::read(&model).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&model, bytes).unwrap();
    let o = p.scorch(
        &[
            &["model", "promote", "churn@1.0.0", "--alias", "stable"][..],
            &reg,
        ]
        .concat(),
    );
    assert_exit(
        &o,
        4,
        &["refusing to promote churn@stable to 1.0.0", "sha256"],
    );
    assert!(
        !p.path()
            .join("registry/churn/_aliases/stable.json")
            .exists()
    );
}
