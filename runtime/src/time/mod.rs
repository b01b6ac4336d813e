//! Event time: pure bookkeeping, no I/O, no clocks.

mod input_watermarks;

pub use input_watermarks::InputWatermarks;
