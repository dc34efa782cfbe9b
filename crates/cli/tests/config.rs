//! Configuration is validated at startup: a missing or malformed setting stops the binary with an
//! error that names the setting (file key and environment variable), before anything runs.

use std::process::Command;

fn pactum(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pactum"));
    command.args(args);
    // Only what the test sets: no PACTUM_* from the caller's environment.
    for (key, _) in std::env::vars() {
        if key.starts_with("PACTUM_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("run pactum");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Arguments, environment, and the text the error must contain.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn missing_and_invalid_settings_are_named() {
    let cases: &[Case<'_>] = &[
        (
            &["indexer"],
            &[],
            "database.url (PACTUM_DATABASE_URL) is required",
        ),
        (
            &["indexer"],
            &[("PACTUM_DATABASE_URL", "mysql://localhost/x")],
            "database.url must be a postgres:// URL, got a \"mysql\" URL",
        ),
        (
            &["indexer"],
            &[
                (
                    "PACTUM_DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/pactum_never_connected",
                ),
                ("PACTUM_CHAIN_ID", "abc"),
            ],
            "PACTUM_CHAIN_ID=\"abc\" is invalid",
        ),
        (
            &["indexer"],
            &[("PACTUM_CHAIN_ESCROW", "0x1234")],
            "PACTUM_CHAIN_ESCROW=\"0x1234\" is invalid",
        ),
        (
            &["api"],
            &[
                (
                    "PACTUM_DATABASE_URL",
                    "postgres://postgres@127.0.0.1:5432/pactum_never_connected",
                ),
                ("PACTUM_CHAIN_ID", "31337"),
                ("PACTUM_API_JWT_SECRET", "short"),
            ],
            "api.jwt_secret (PACTUM_API_JWT_SECRET) must be at least 32 bytes",
        ),
        (
            &["indexer", "--config", "/nonexistent/pactum.toml"],
            &[],
            "cannot read configuration file",
        ),
    ];
    for (args, env, expected) in cases {
        let (ok, stderr) = pactum(args, env);
        assert!(!ok, "{args:?} {env:?} must fail");
        assert!(
            stderr.contains(expected),
            "{args:?} {env:?}: expected {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn unknown_keys_in_the_file_are_refused() {
    let dir = std::env::temp_dir().join(format!("pactum-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("pactum.toml");
    std::fs::write(&file, "[indexer]\nbatch_blocks = 10\nconfirmation = 3\n").expect("write");
    let (ok, stderr) = pactum(
        &["indexer", "--config", file.to_str().unwrap_or_default()],
        &[],
    );
    assert!(!ok);
    assert!(stderr.contains("unknown field `confirmation`"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn environment_overrides_the_file() {
    let dir = std::env::temp_dir().join(format!("pactum-config-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("pactum.toml");
    // The file's URL is invalid; the environment's replaces it, so the error moves on to the next
    // missing setting.
    std::fs::write(&file, "[database]\nurl = \"mysql://nope\"\n").expect("write");
    let (ok, stderr) = pactum(
        &["indexer", "--config", file.to_str().unwrap_or_default()],
        &[(
            "PACTUM_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/pactum_never_connected",
        )],
    );
    assert!(!ok);
    assert!(!stderr.contains("postgres:// URL"), "{stderr}");
    assert!(stderr.contains("PACTUM_CHAIN"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
