fn main() -> anyhow::Result<()> {
    kiln_host::cli::main()
}
