//! Placeholder until the showdown lands: `cargo run --release --example showdown`.
fn main() {
    println!("showdown arrives with the layers: see README.md");
}
