//! `skiplab parity`: CUDA against the CPU on every op and network (needs a GPU).

#[cfg(feature = "cuda")]
use std::io::Write;
use std::process::ExitCode;

#[cfg(not(feature = "cuda"))]
use anyhow::bail;
use anyhow::Result;

#[cfg(feature = "cuda")]
use crate::outln;
#[cfg(feature = "cuda")]
use dfdx::prelude::*;
#[cfg(feature = "cuda")]
use skiplab::device as devices;
#[cfg(feature = "cuda")]
use skiplab::topology::{CnnSpec, ImageShape, MlpSpec, SkipSelection, Topology};

/// Compares the CPU with the first CUDA GPU on every skiplab op and network (see
/// `skiplab::parity`); prints one verdict line per check.
pub fn parity() -> Result<ExitCode> {
    parity_cuda()
}

#[cfg(feature = "cuda")]
fn parity_cuda() -> Result<ExitCode> {
    use skiplab::parity::{compare, compare_with_reference, network_snapshot, ops_snapshot};
    devices::probe_cuda().map_err(|e| anyhow::anyhow!("parity needs a GPU: {e}"))?;
    let cuda = Cuda::try_build(0, 0).map_err(|e| anyhow::anyhow!("cannot start CUDA: {e}"))?;
    let cpu = Cpu::seed_from_u64(0);
    let mut mlp = Topology::Mlp(MlpSpec::new(784, vec![128, 256, 256], 26));
    mlp.apply_skips(&SkipSelection::All)?;
    let mut cnn = Topology::Cnn(CnnSpec::paper(ImageShape::new(3, 32, 32), 10));
    cnn.apply_skips(&SkipSelection::Paper)?;
    // Each case: CUDA f32 against CPU f64, next to CPU f32 against CPU f64.
    let mut verdicts = Vec::new();
    let cases: [(&str, &Topology, usize); 2] =
        [("mlp all skips", &mlp, 64), ("cnn paper skips", &cnn, 16)];
    verdicts.extend(compare_with_reference(
        "ops",
        &ops_snapshot::<f64, _>(&cpu, 7),
        &ops_snapshot::<f32, _>(&cpu, 7),
        &ops_snapshot::<f32, _>(&cuda, 7),
    ));
    for (case, topology, batch) in cases {
        verdicts.extend(compare_with_reference(
            case,
            &network_snapshot::<f64, _>(&cpu, topology, batch, 7),
            &network_snapshot::<f32, _>(&cpu, topology, batch, 7),
            &network_snapshot::<f32, _>(&cuda, topology, batch, 7),
        ));
    }
    // CUDA against itself: run-to-run differences would point at a race, not at an op.
    verdicts.extend(compare(
        "cuda run-to-run, cnn paper skips",
        &network_snapshot::<f32, _>(&cuda, &cnn, 16, 7),
        &network_snapshot::<f32, _>(&cuda, &cnn, 16, 7),
    ));
    for v in &verdicts {
        outln!("{v}");
    }
    let failed = verdicts.iter().filter(|v| !v.passed()).count();
    outln!("{} passed, {failed} failed", verdicts.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(not(feature = "cuda"))]
fn parity_cuda() -> Result<ExitCode> {
    bail!("parity compares the CPU with a CUDA GPU; this skiplab was built without the `cuda` feature (see the README)")
}
