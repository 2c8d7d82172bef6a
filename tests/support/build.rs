//! Build script: marks tests `ignored` (with the reason, shown by `cargo test`) when what they
//! need cannot be had here:
//! - the browser tests when Chromium is not installed and this is not CI (in CI they always
//!   run, and fail if the browser is missing: `.ci/run` installs it);
//! - the power-cut test when LazyFS (`../shared/tools/lazyfs`, beside the project's own
//!   checkout, never in a user's clone) is absent, or, outside CI, when FUSE cannot be used
//!   (in CI it then runs and fails: `.ci/run` installs fuse3).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(chasti_no_browser)");
    watch("/usr/bin/chromium");
    watch("/usr/bin/chromedriver");
    println!("cargo::rerun-if-env-changed=CI");
    let present = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists();
    if !present && std::env::var_os("CI").is_none() {
        println!("cargo::rustc-cfg=chasti_no_browser");
        println!("cargo::warning=Chromium is not installed: the browser tests will be ignored (apt-get install chromium chromium-driver, or run .ci/run)");
    }
    power_cuts();
}

/// Reruns this script when `path` appears or changes. A path that does not exist is never
/// named to cargo: cargo reruns a build script whose watched file is missing at every build,
/// and with it recompiles chasti (16 minutes lost in one package build on a host without
/// Chromium). The nearest folder that exists is watched instead: installing the file changes
/// that folder.
fn watch(path: impl AsRef<std::path::Path>) {
    let path = path.as_ref();
    let watched = path
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.exists())
        .unwrap_or(path);
    println!("cargo::rerun-if-changed={}", watched.display());
}

fn power_cuts() {
    println!("cargo::rustc-check-cfg=cfg(chasti_no_lazyfs)");
    println!("cargo::rustc-check-cfg=cfg(chasti_no_fuse)");
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let lazyfs = std::path::Path::new(&root).join("../shared/tools/lazyfs/lazyfs-ctl");
    watch(&lazyfs);
    watch("/usr/bin/fusermount3");
    if !lazyfs.exists() {
        println!("cargo::rustc-cfg=chasti_no_lazyfs");
        return;
    }
    let is_root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false);
    let fuse = std::path::Path::new("/dev/fuse").exists()
        && std::path::Path::new("/usr/bin/fusermount3").exists()
        && is_root;
    if !fuse && std::env::var_os("CI").is_none() {
        println!("cargo::rustc-cfg=chasti_no_fuse");
        println!("cargo::warning=FUSE cannot be used here (needs /dev/fuse, fuse3 and root): the power-cut test will be ignored (apt-get install fuse3, or run .ci/run)");
    }
}
