//! A WASI command component: it exports `wasi:cli/run`, none of weir's stage
//! interfaces. The hot-swap tests try to swap it in and expect a refusal.

fn main() {
    println!("I am a command, not a weir plugin");
}
