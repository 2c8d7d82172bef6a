//! Build script: marks the browser tests `ignored` (with the reason, shown by `cargo test`)
//! when Chromium is not installed here and this is not CI. In CI they always run, and fail if
//! the browser is missing: `.ci/run` installs it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(chasti_no_browser)");
    println!("cargo::rerun-if-changed=/usr/bin/chromium");
    println!("cargo::rerun-if-changed=/usr/bin/chromedriver");
    println!("cargo::rerun-if-env-changed=CI");
    let present = std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists();
    if !present && std::env::var_os("CI").is_none() {
        println!("cargo::rustc-cfg=chasti_no_browser");
        println!("cargo::warning=Chromium is not installed: the browser tests will be ignored (apt-get install chromium chromium-driver, or run .ci/run)");
    }
}
