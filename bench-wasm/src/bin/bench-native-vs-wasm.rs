//! Same kiln-core code, native vs in wasm: ingest + merge of the shared pprof
//! test data (see `kiln_bench_wasm::workload`), timed on both sides with the
//! same loop; prints both medians and the wasm/native ratio (target ≤ 1.5).
//!
//!     cargo run --release -p kiln-bench-wasm --bin bench-native-vs-wasm [-- --jfr]
//!
//! With `--jfr` the workload is the JFR conversion of `testdata/jfr`
//! (`kiln_bench_wasm::jfr`), and both sides also print MB/s of uncompressed
//! JFR.
//!
//! Steps, in one run:
//! 1. builds the guest (`kiln-bench-wasm` bin, wasm32-wasip2, release) with a
//!    nested cargo in its own target dir, as wasm-host's build script builds
//!    the component (host rustflags are not passed on); `KILN_BENCH_WASM`
//!    points at a prebuilt guest instead;
//! 2. times the workload natively in this process;
//! 3. runs the guest as a `wasi:cli/command` in wasmtime (the host's version,
//!    Cranelift `opt_level = speed`, epoch interruption on as in the host)
//!    with the test data preopened read-only; the guest times the workload
//!    itself with the WASI monotonic clock, so compilation, instantiation and
//!    file reading are excluded on both sides.
//!
//! Env: `KILN_SHARED` (test data), `KILN_BENCH_WARMUP` (default 2),
//! `KILN_BENCH_ITERS` (default 10), `KILN_BENCH_WASM` (prebuilt guest).

#[cfg(target_arch = "wasm32")]
fn main() {
    panic!("bench-native-vs-wasm is the native runner; the guest is the kiln-bench-wasm bin");
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> anyhow::Result<()> {
    runner::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod runner {
    use std::ffi::OsStr;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Instant;

    use anyhow::{Context as _, anyhow, bail, ensure};
    use kiln_bench_wasm::{Measurement, jfr, load_fixtures, measure, measure_with, shared_dir};
    use wasmtime::component::{Component, Linker, ResourceTable};
    use wasmtime::{Config, Engine, OptLevel, Store};
    use wasmtime_wasi::p2::bindings::sync::Command as WasiCommand;
    use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
    use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};

    const WASM_TARGET: &str = "wasm32-wasip2";
    const GUEST_BIN: &str = "kiln-bench-wasm";
    const GUEST_DIR: &str = "/pprof";
    const TARGET: f64 = 1.5;

    pub fn main() -> anyhow::Result<()> {
        ensure!(
            !cfg!(debug_assertions),
            "the runner was built without optimisations; run it with `cargo run --release`"
        );
        let warmup = env_count("KILN_BENCH_WARMUP", kiln_bench_wasm::WARMUP)?;
        let iterations = env_count("KILN_BENCH_ITERS", kiln_bench_wasm::ITERATIONS)?;
        // `--jfr`: the JFR conversion workload over testdata/jfr instead.
        let jfr = std::env::args().skip(1).any(|a| a == "--jfr");
        let data = shared_dir().join(if jfr { "testdata/jfr" } else { "testdata/pprof" });

        let wasm = guest_wasm()?;
        eprintln!("guest: {}", wasm.display());

        let (native, inputs, bytes) =
            if jfr { native_jfr(&data, warmup, iterations) } else { native_pprof(&data, warmup, iterations) };
        report("native", &native);
        let rate = |m: &Measurement| bytes as f64 / 1e6 / (m.median_ns() / 1e9);
        if jfr {
            println!("native rate: {:.1} MB/s of uncompressed JFR", rate(&native));
        }

        let (files, wasm_m) = run_guest(&wasm, &data, jfr, warmup, iterations)?;
        report("wasm  ", &wasm_m);
        if jfr {
            println!("wasm rate:   {:.1} MB/s of uncompressed JFR", rate(&wasm_m));
        }

        ensure!(files == inputs, "the guest loaded {files} inputs, native {inputs}");

        ensure!(
            wasm_m.checksum == native.checksum,
            "checksums differ: wasm {} vs native {}",
            wasm_m.checksum,
            native.checksum
        );
        let ratio = wasm_m.median_ns() / native.median_ns();
        println!("checksum: {} (identical on both sides)", native.checksum);
        println!(
            "ratio wasm/native: {ratio:.3} (target <= {TARGET}: {})",
            if ratio <= TARGET { "met" } else { "NOT met" }
        );
        Ok(())
    }

    /// Times the pprof ingest + query workload; returns it with the input
    /// count and stored bytes.
    fn native_pprof(data: &Path, warmup: usize, iterations: usize) -> (Measurement, usize, usize) {
        let fixtures = load_fixtures(data);
        println!(
            "fixtures: {} pprofs ({} bytes as stored) from {}; skipped {}",
            fixtures.profiles.len(),
            fixtures.total_bytes(),
            data.display(),
            fixtures.skipped.len()
        );
        for (name, why) in &fixtures.skipped {
            println!("  skipped {name}: {why}");
        }
        println!("iterations: warm-up {warmup}, measured {iterations} (median)");
        (measure(&fixtures.bytes(), warmup, iterations), fixtures.profiles.len(), fixtures.total_bytes())
    }

    /// Times the JFR conversion workload; returns it with the recording
    /// count and uncompressed bytes.
    fn native_jfr(data: &Path, warmup: usize, iterations: usize) -> (Measurement, usize, usize) {
        let recordings = jfr::load_recordings(data);
        println!(
            "recordings: {} JFR files ({} bytes uncompressed) from {}",
            recordings.files.len(),
            recordings.total_bytes(),
            data.display()
        );
        println!("iterations: warm-up {warmup}, measured {iterations} (median)");
        let m = measure_with(|| jfr::workload(&recordings), warmup, iterations);
        (m, recordings.files.len(), recordings.total_bytes())
    }

    fn env_count(name: &str, default: usize) -> anyhow::Result<usize> {
        match std::env::var(name) {
            Ok(v) => v.parse().with_context(|| format!("{name}={v} is not a count")),
            Err(_) => Ok(default),
        }
    }

    fn report(side: &str, m: &Measurement) {
        let ms = |ns: f64| ns / 1e6;
        let min = m.samples_ns.iter().copied().min().unwrap_or(0) as f64;
        let max = m.samples_ns.iter().copied().max().unwrap_or(0) as f64;
        println!(
            "{side} median {:9.3} ms   (min {:.3}, max {:.3}, n={})",
            ms(m.median_ns()),
            ms(min),
            ms(max),
            m.samples_ns.len()
        );
    }

    /// Builds the guest with a nested cargo (or takes `KILN_BENCH_WASM`).
    fn guest_wasm() -> anyhow::Result<PathBuf> {
        if let Some(path) = std::env::var_os("KILN_BENCH_WASM") {
            return Ok(PathBuf::from(path));
        }
        let root =
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("bench-wasm lives in the workspace")?.to_path_buf();
        // <target>/release/bench-native-vs-wasm -> <target>/bench-wasm-build
        let exe = std::env::current_exe()?;
        let target_dir = exe
            .parent()
            .and_then(Path::parent)
            .map_or_else(|| root.join("target"), Path::to_path_buf)
            .join("bench-wasm-build");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&root)
            .args(["build", "--release", "-p", "kiln-bench-wasm", "--bin", GUEST_BIN, "--target", WASM_TARGET])
            .arg("--manifest-path")
            .arg(root.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(&target_dir);
        kiln_build::nested::remove_leaky_env(&mut cmd);
        eprintln!("building the guest: {} {:?}", Path::new(&cargo).display(), cmd.get_args().collect::<Vec<&OsStr>>());
        let status = cmd.status().with_context(|| format!("running {}", Path::new(&cargo).display()))?;
        ensure!(status.success(), "building {GUEST_BIN} for {WASM_TARGET} failed");
        let wasm = target_dir.join(WASM_TARGET).join("release").join(format!("{GUEST_BIN}.wasm"));
        ensure!(wasm.is_file(), "{} was not produced", wasm.display());
        Ok(wasm)
    }

    struct GuestState {
        wasi: WasiCtx,
        table: ResourceTable,
    }

    impl WasiView for GuestState {
        fn ctx(&mut self) -> WasiCtxView<'_> {
            WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
        }
    }

    /// Runs the guest command; returns its file count and measurement.
    fn run_guest(
        wasm: &Path,
        data: &Path,
        jfr: bool,
        warmup: usize,
        iterations: usize,
    ) -> anyhow::Result<(usize, Measurement)> {
        let mut config = Config::new();
        config.cranelift_opt_level(OptLevel::Speed).epoch_interruption(true);
        let engine = Engine::new(&config)?;
        let t = Instant::now();
        let component = Component::from_file(&engine, wasm)
            .map_err(|e| anyhow::Error::from(e).context(format!("compiling {}", wasm.display())))?;
        eprintln!("compiled the guest in {:.2} s (not timed)", t.elapsed().as_secs_f64());

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let stdout = MemoryOutputPipe::new(1 << 20);
        let mut guest_args = vec![GUEST_BIN.to_string()];
        if jfr {
            guest_args.push("--jfr".into());
        }
        guest_args.extend([GUEST_DIR.to_string(), warmup.to_string(), iterations.to_string()]);
        let wasi = WasiCtx::builder()
            .args(&guest_args)
            .stdout(stdout.clone())
            .inherit_stderr()
            .preopened_dir(data, GUEST_DIR, FsPerms::ReadOnly)?
            .build();
        let mut store = Store::new(&engine, GuestState { wasi, table: ResourceTable::new() });
        // Epoch checks are compiled in as in the host; nothing advances the
        // epoch here, so the deadline is never reached.
        store.set_epoch_deadline(1 << 40);
        let command = WasiCommand::instantiate(&mut store, &component, &linker)?;
        let result = command.wasi_cli_run().call_run(&mut store)?;
        let out = String::from_utf8_lossy(&stdout.contents()).into_owned();
        if result.is_err() {
            bail!("the guest failed; its output:\n{out}");
        }
        let mut files = None;
        let mut measurement = None;
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("kiln-bench files=") {
                files = rest.split_whitespace().next().and_then(|n| n.parse().ok());
            } else if let Some(m) = Measurement::from_line(line) {
                measurement = Some(m);
            }
        }
        let files = files.ok_or_else(|| anyhow!("no file count in the guest output:\n{out}"))?;
        let measurement = measurement.ok_or_else(|| anyhow!("no result in the guest output:\n{out}"))?;
        Ok((files, measurement))
    }
}
