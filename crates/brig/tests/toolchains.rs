//! Everyday toolchains run in the default view or the workspace preset (`-w`), as root and as an
//! unprivileged uid: a venv with pip and pytest, Go, the JVM, node and npm, make, cargo, curl.
//! Each installs and builds from local files only (the prison has no network).

mod common;
use common::*;
use std::path::Path;

/// `brig run ARGS` as `who`, started in `dir` (the workspace preset takes it from there).
fn run_in(who: Who, dir: &Path, args: &[&str]) -> std::process::Output {
    let mut a = vec!["run"];
    a.extend_from_slice(args);
    command(who, &brig_bin(), &a).current_dir(dir).output().expect("spawn brig")
}

fn ok(o: &std::process::Output, what: &str) -> String {
    assert_eq!(code(o), 0, "{what}: {}\n{}", stdout(o), stderr(o));
    stdout(o)
}

/// pytest and its dependencies as wheels, fetched once from the package index (outside any
/// prison) into the test's target directory.
fn wheelhouse() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wheelhouse");
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::fs::read_dir(&dir).map(|d| d.count() >= 4).unwrap_or(false) {
            return;
        }
        let o = std::process::Command::new("/usr/bin/python3")
            .args(["-m", "pip", "download", "-q", "-d"])
            .arg(&dir)
            .args(["pytest==8.3.4"])
            .output()
            .expect("pip download");
        assert!(o.status.success(), "pip download pytest: {}", stderr(&o));
    });
    dir
}

#[test]
fn pip_installs_into_a_venv_from_a_wheelhouse_and_pytest_runs() {
    let wheels = wheelhouse();
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("test_sum.py", "def test_sum():\n    assert sum([1, 2]) == 3\n");
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(&wheels)
            .arg(s.join("wheels"))
            .status()
            .expect("cp");
        assert!(copied.success());
        s.own(who);
        let script = "/usr/bin/python3 -m venv .venv && \
            .venv/bin/pip install -q --no-index --find-links wheels pytest && \
            .venv/bin/pytest -q -p no:cacheprovider";
        let out = ok(&run_in(who, &s.path, &["-w", "--", "sh", "-c", script]), "pip + pytest");
        assert!(out.contains("1 passed"), "{out}");
    }
}

#[test]
fn go_builds_and_tests_and_runs_under_a_memory_limit() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("go.mod", "module example.com/hello\n\ngo 1.19\n");
        s.write("main.go", "package main\n\nimport \"fmt\"\n\nfunc Add(a, b int) int { return a + b }\n\nfunc main() { fmt.Println(\"go says\", Add(2, 3)) }\n");
        s.write("main_test.go", "package main\n\nimport \"testing\"\n\nfunc TestAdd(t *testing.T) {\n\tif Add(2, 3) != 5 {\n\t\tt.Fatal(\"sum\")\n\t}\n}\n");
        s.own(who);
        let env = ["--env", "GOTOOLCHAIN=local", "--env", "GOFLAGS=-mod=mod"];
        let build =
            [&["-w"][..], &env, &["--", "sh", "-c", "go build -o hello . && go test ./..."]]
                .concat();
        let out = ok(&run_in(who, &s.path, &build), "go build + go test");
        assert!(out.contains("ok"), "{out}");
        if !mem_limit_works(who) {
            continue;
        }
        let o = run_in(who, &s.path, &["-w", "--mem", "256M", "--", "./hello"]);
        assert_eq!(ok(&o, "a Go binary under --mem 256M"), "go says 5\n");
    }
}

#[test]
fn java_runs_a_source_file_with_and_without_a_memory_limit() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write("Hello.java", "public class Hello { public static void main(String[] a) { System.out.println(\"java says hi\"); } }\n");
        s.own(who);
        let src = s.sub("Hello.java");
        let mem: &[&str] = if mem_limit_works(who) { &["--mem", "512M"] } else { &[] };
        for extra in [&[][..], mem] {
            let args = [&["--ro", s.s()][..], extra, &["--", "java", &src]].concat();
            let o = run_in(who, Path::new("/"), &args);
            assert_eq!(ok(&o, &format!("java {extra:?}")), "java says hi\n");
        }
    }
}

#[test]
fn node_runs_under_a_memory_limit_and_npm_installs_a_local_tarball() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write(
            "lib/package.json",
            "{\"name\": \"brig-lib\", \"version\": \"1.0.0\", \"main\": \"index.js\"}\n",
        );
        s.write("lib/index.js", "module.exports = (a, b) => a + b;\n");
        s.write("app/package.json", "{\"name\": \"app\", \"version\": \"1.0.0\"}\n");
        s.own(who);
        let mem: &[&str] = if mem_limit_works(who) { &["--mem", "256M"] } else { &[] };
        let o = run_in(
            who,
            Path::new("/"),
            &[mem, &["--", "node", "-e", "console.log('node', 40 + 2)"]].concat(),
        );
        assert_eq!(ok(&o, "node under --mem 256M"), "node 42\n");
        let npm = "cd lib && npm pack -q --offline >/dev/null && cd ../app && \
            npm install --offline --no-audit --no-fund -q ../lib/brig-lib-1.0.0.tgz >/dev/null && \
            node -e \"console.log('sum', require('brig-lib')(2, 3))\"";
        let out = ok(&run_in(who, &s.path, &["-w", "--", "sh", "-c", npm]), "npm install");
        assert_eq!(out, "sum 5\n");
    }
}

#[test]
fn make_builds_in_parallel_and_the_result_runs() {
    for who in everyone() {
        let s = Scratch::new(who);
        let mut objs = String::new();
        let mut calls = String::new();
        for i in 0..8 {
            s.write(&format!("f{i}.c"), &format!("int f{i}(void) {{ return {i}; }}\n"));
            objs.push_str(&format!(" f{i}.o"));
            calls.push_str(&format!("f{i}() + "));
            s.write("decl.h", "");
        }
        let decls: String = (0..8).map(|i| format!("int f{i}(void);\n")).collect();
        s.write("main.c", &format!("#include <stdio.h>\n{decls}int main(void) {{ printf(\"%d\\n\", {calls}0); return 0; }}\n"));
        s.write("Makefile", &format!("app: main.o{objs}\n\tcc -o $@ $^\n"));
        s.own(who);
        let o = run_in(who, &s.path, &["-w", "--", "sh", "-c", "make -s -j8 && ./app"]);
        assert_eq!(ok(&o, "make -j8 && ./app"), "28\n");
    }
}

#[test]
fn cargo_builds_offline_and_tests() {
    for who in everyone() {
        let s = Scratch::new(who);
        s.write(
            "Cargo.toml",
            "[package]\nname = \"inside\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        );
        s.write("src/main.rs", "fn add(a: i32, b: i32) -> i32 { a + b }\nfn main() { println!(\"cargo says {}\", add(2, 3)); }\n#[test]\nfn adds() { assert_eq!(add(2, 3), 5); }\n");
        s.own(who);
        let script = "/usr/bin/cargo build -q --offline && /usr/bin/cargo test -q --offline 2>&1 && ./target/debug/inside";
        let out = ok(&run_in(who, &s.path, &["-w", "--", "sh", "-c", script]), "cargo");
        assert!(
            out.contains("test result: ok. 1 passed") && out.ends_with("cargo says 5\n"),
            "{out}"
        );
    }
}

#[test]
fn curl_fails_with_a_network_error_not_a_certificate_error() {
    for who in everyone() {
        let o = run_in(who, Path::new("/"), &["--", "curl", "-sS", "https://deb.debian.org/"]);
        // 6: could not resolve host; 7: could not connect. Never 60 or 77 (certificates).
        assert!(matches!(code(&o), 6 | 7), "{}: {}", code(&o), stderr(&o));
        let o = run_in(
            who,
            Path::new("/"),
            &["--", "sh", "-c", "test -s /etc/ssl/certs/ca-certificates.crt && echo certs"],
        );
        assert_eq!(ok(&o, "CA certificates in the default view"), "certs\n");
    }
}
