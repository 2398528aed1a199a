// The web client in ../../static is embedded into the binary (include_dir):
// rebuild when any file there changes, is added or removed.
fn main() {
    println!("cargo:rerun-if-changed=../../static");
}
