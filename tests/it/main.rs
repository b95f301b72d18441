//! One integration-test binary (every test binary links libtorch, so one keeps link time down).

mod augment;
mod cli;
mod data;
mod external;
mod faults;
mod images;
mod imports;
mod lvis;
mod plan;
mod pretrained;
mod report;
mod runs;
mod schedule;
mod slurm;
mod theory;
mod util;
