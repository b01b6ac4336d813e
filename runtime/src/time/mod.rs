//! Event time: pure bookkeeping, no I/O, no clocks (callers pass the time).

mod generator;
mod input_watermarks;

pub use generator::{BoundedOutOfOrderness, WatermarkUpdate};
pub use input_watermarks::InputWatermarks;
