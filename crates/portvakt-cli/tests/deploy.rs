//! The deployment manifests in deploy/: the NAIS Applications pass `portvakt manifest check
//! --strict`; the Kubernetes objects validate against the Kubernetes OpenAPI schemas offline
//! (`kubernetes-validate`, a PyPI package that ships the schemas; `.ci/run` installs it) and
//! hold the properties the README promises (native sidecar, uid/gid 1069, read-only root, no
//! privilege escalation, no capabilities, probes on the probe port, the Service on the proxy).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy(path: &str) -> PathBuf {
    repo().join("deploy").join(path)
}

/// The YAML documents of a file as JSON, read by PyYAML (which kubernetes-validate depends on).
fn yaml_documents(path: &Path) -> Vec<Value> {
    let output = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(path)
        .output()
        .expect("python3 is needed to read the manifests");
    assert!(
        output.status.success(),
        "cannot read {} as YAML (PyYAML comes with kubernetes-validate: pip install kubernetes-validate): {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `kubernetes-validate --strict` (unknown fields are errors), run through the python3 it is
/// installed for.
fn kubernetes_validate() -> Command {
    let mut command = Command::new("python3");
    command.args(["-m", "kubernetes_validate", "--strict"]);
    command
}

#[test]
fn nais_applications_pass_manifest_check_strict() {
    for file in [
        "nais/proxy-in-container.yaml",
        "nais/app-calls-introspection.yaml",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_portvakt"))
            .args(["manifest", "check", "--strict"])
            .arg(deploy(file))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{file}: {stdout}{stderr}");
        assert!(
            format!("{stdout}{stderr}").contains("0 errors, 0 warnings"),
            "{file}: {stdout}{stderr}"
        );
    }
}

/// The value of the variable `name` in a container's (or NAIS spec's) `env` list.
fn env_value<'a>(env: &'a Value, name: &str) -> &'a str {
    env.as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {env}"))["value"]
        .as_str()
        .unwrap()
}

#[test]
fn nais_proxy_variant_runs_the_app_behind_the_proxy_on_its_service_port() {
    let app = &yaml_documents(&deploy("nais/proxy-in-container.yaml"))[0];
    let command: Vec<&str> = app["spec"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let flag = |name: &str| {
        let at = command.iter().position(|a| *a == name).unwrap();
        command[at + 1]
    };
    assert_eq!(command[..2], ["/portvakt", "serve"]);
    let separator = command.iter().position(|a| *a == "--").unwrap();
    assert!(
        separator + 1 < command.len(),
        "the app's command follows `--`"
    );
    assert_eq!(
        flag("--proxy-listen"),
        format!("0.0.0.0:{}", app["spec"]["port"])
    );
    assert!(flag("--upstream").starts_with("http://127.0.0.1:"));
    // The policy it names is the repository's example, which must be valid.
    assert_eq!(flag("--policy"), "/app/policy.toml");
    let check = Command::new(env!("CARGO_BIN_EXE_portvakt"))
        .args(["serve", "--check-policy", "--policy"])
        .arg(repo().join("examples/policy.toml"))
        .output()
        .unwrap();
    assert!(check.status.success());
    // Probes on portvakt's probe port, which PROBE_BIND_ADDRESS opens.
    let env = |name: &str| env_value(&app["spec"]["env"], name);
    let probe = env("PROBE_BIND_ADDRESS");
    // Beside NAIS's own token sidecar, which holds 7164 and 7165 in every Maskinporten pod.
    for taken in ["7164", "7165"] {
        assert!(!probe.ends_with(taken), "{probe}");
        assert!(!env("BIND_ADDRESS").ends_with(taken));
    }
    assert_eq!(
        app["spec"]["prometheus"]["port"],
        probe.rsplit(':').next().unwrap()
    );
    for (probe_kind, path) in [("liveness", "/healthz"), ("readiness", "/readyz")] {
        assert_eq!(app["spec"][probe_kind]["path"], path);
        assert_eq!(
            probe,
            format!("0.0.0.0:{}", app["spec"][probe_kind]["port"]),
            "{probe_kind}"
        );
    }
}

#[test]
fn kubernetes_objects_validate_against_the_openapi_schemas() {
    let files: Vec<PathBuf> = ["deployment.yaml", "service.yaml", "policy-configmap.yaml"]
        .iter()
        .map(|f| deploy(&format!("kubernetes/{f}")))
        .collect();
    // 1.29: the first release with native sidecars on by default; and the newest the package
    // ships (its default).
    for version in [Some("1.29.0"), None] {
        let mut command = kubernetes_validate();
        if let Some(version) = version {
            command.args(["--kubernetes-version", version]);
        }
        let output = command.args(&files).output().unwrap_or_else(|e| {
            panic!("kubernetes-validate is needed (pip install kubernetes-validate; .ci/run installs it): {e}")
        });
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{version:?}: {text}");
        assert_eq!(text.matches(" passed for resource ").count(), 3, "{text}");
    }
}

#[test]
fn kubernetes_validation_refuses_a_misspelt_field() {
    // The validator is not a rubber stamp: an unknown field in the sidecar's securityContext
    // fails it.
    let original = std::fs::read_to_string(deploy("kubernetes/deployment.yaml")).unwrap();
    let broken = original.replacen("readOnlyRootFilesystem", "readOnlyRootFilesystm", 1);
    let path = std::env::temp_dir().join(format!("portvakt-deploy-{}.yaml", std::process::id()));
    std::fs::write(&path, broken).unwrap();
    let output = kubernetes_validate()
        .arg(&path)
        .output()
        .expect("kubernetes-validate is needed");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "kubernetes-validate is needed (pip install kubernetes-validate==1.37.0; .ci/run installs it): {stderr}"
    );
    assert!(!output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("readOnlyRootFilesystm"), "{stdout}{stderr}");
}

#[test]
fn kubernetes_sidecar_is_native_unprivileged_and_probed_on_the_probe_port() {
    let deployment = &yaml_documents(&deploy("kubernetes/deployment.yaml"))[0];
    let pod = &deployment["spec"]["template"]["spec"];
    let sidecar = &pod["initContainers"][0];
    assert_eq!(sidecar["name"], "portvakt");
    assert_eq!(sidecar["restartPolicy"], "Always", "a native sidecar");
    let security = &sidecar["securityContext"];
    assert_eq!(security["runAsUser"], 1069);
    assert_eq!(security["runAsGroup"], 1069);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"], serde_json::json!(["ALL"]));

    let port = |name: &str| {
        sidecar["ports"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["containerPort"]
            .as_u64()
            .unwrap()
    };
    let env = |name: &str| env_value(&sidecar["env"], name).to_owned();
    assert_eq!(
        env("PROBE_BIND_ADDRESS"),
        format!("0.0.0.0:{}", port("probes"))
    );
    let args: Vec<&str> = sidecar["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let at = args.iter().position(|a| *a == "--proxy-listen").unwrap();
    assert_eq!(args[at + 1], format!("0.0.0.0:{}", port("proxy")));
    // The startup probe must not wait for the app: the app starts after it passes.
    assert_eq!(sidecar["startupProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(sidecar["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(sidecar["readinessProbe"]["httpGet"]["path"], "/readyz");
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        assert_eq!(sidecar[probe]["httpGet"]["port"], "probes", "{probe}");
    }
    let mebibytes = |v: &Value| {
        v.as_str()
            .unwrap()
            .strip_suffix("Mi")
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert!(mebibytes(&sidecar["resources"]["requests"]["memory"]) <= 32);
    assert!(mebibytes(&sidecar["resources"]["limits"]["memory"]) <= 256);

    // The Service targets the proxy's port, by number: a name on a native sidecar resolves
    // only from Kubernetes 1.32 on, and the README says 1.29.
    let service = &yaml_documents(&deploy("kubernetes/service.yaml"))[0];
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port("proxy"));
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
}

#[test]
fn the_policy_config_map_is_the_example_policy() {
    let config_map = &yaml_documents(&deploy("kubernetes/policy-configmap.yaml"))[0];
    let policy = config_map["data"]["policy.toml"].as_str().unwrap();
    let example = std::fs::read_to_string(repo().join("examples/policy.toml")).unwrap();
    assert_eq!(
        policy, example,
        "regenerate the ConfigMap from examples/policy.toml"
    );
}
