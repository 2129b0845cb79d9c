//! Measures how many bcrypt hashes per second this machine computes at one
//! cost, on a number of threads, so that the login rate can be compared to
//! the work it cannot avoid: one hash when the code is issued and one
//! verification when it is checked.
//!
//! Usage: `bench-bcrypt COST THREADS SECONDS`; prints one JSON object.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let mut args = std::env::args().skip(1);
    let cost: u32 = args.next().and_then(|v| v.parse().ok()).unwrap_or(10);
    let threads: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(2);
    let seconds: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(5);

    let hashes = AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while Instant::now() < deadline {
                    let hash = bcrypt::hash("123456", cost).expect("bcrypt cost is 4 to 31");
                    std::hint::black_box(hash);
                    hashes.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let count = hashes.load(Ordering::Relaxed);
    println!(
        "{{\"cost\": {cost}, \"threads\": {threads}, \"hashes\": {count}, \"seconds\": {elapsed:.3}, \"hashes_per_second\": {:.3}}}",
        count as f64 / elapsed
    );
}
