//! Resident memory of one CNN run's stages on Fashion-MNIST: the data set loaded and split,
//! 200 training steps, evaluating the validation split (twice), then the device's cache
//! freed. How `train::eval_batch` and the freed cache were measured (docs/benchmarks.md).
//!
//!     cargo run --release --example eval_memory -- [vanilla|reinforced] [DATA_DIR]

use std::sync::Arc;

use dfdx::tensor::Cache;
use skiplab::data::{self, DatasetName, PreparedData};
use skiplab::net::optim::OptimizerConfig;
use skiplab::topology::{CnnSpec, ImageShape, Topology};
use skiplab::train::{TrainConfig, Trainer};

fn rss(what: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    println!(
        "{what:<32} resident {:6.0} MiB, peak {:6.0} MiB",
        mib("VmRSS:"),
        mib("VmHWM:")
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let model = args.next().unwrap_or_else(|| "vanilla".into());
    let data_dir = args.next().unwrap_or_else(|| "../shared/data".into());
    let _pool = skiplab::train::cpu_worker_pool_here();
    rss("start");
    let dataset = data::load(DatasetName::FashionMnist, data_dir.as_ref()).expect("Fashion-MNIST");
    let prepared = Arc::new(PreparedData::prepare(&dataset, 0.1, 1));
    drop(dataset);
    rss("split (data set dropped)");
    let stages = match model.as_str() {
        "reinforced" => vec![vec![32, 32], vec![96, 96], vec![224, 224]],
        _ => vec![vec![32, 32], vec![64, 64], vec![128, 128]],
    };
    let topology = Topology::Cnn(CnnSpec::new(ImageShape::new(1, 28, 28), stages, 10));
    let config = TrainConfig {
        optimizer: OptimizerConfig::sgd(0.01, 0.9, 0.0),
        batch_size: 32,
        epochs: 1,
        seed: 1,
        schedule: None,
    };
    let dev = skiplab::net::cpu_ops::training_device(1);
    let mut trainer = Trainer::new(topology, prepared.clone(), config, &dev).expect("a CNN");
    for step in 0..200 {
        let batch: Vec<usize> = (step * 32..(step + 1) * 32).collect();
        trainer.train_step(&batch).expect("a step");
    }
    rss("200 training steps");
    for pass in ["evaluated", "evaluated again"] {
        let start = std::time::Instant::now();
        trainer.evaluate(&prepared.val);
        rss(&format!("{pass} ({:.2} s)", start.elapsed().as_secs_f64()));
    }
    drop(trainer);
    dev.empty_cache();
    rss("trainer dropped, cache freed");
}
